"""The payload of a report: explicit flags, then git, then the CI environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from relay.client.facts_ci import ci_facts
from relay.client.facts_git import git_facts

# Facts that are deployment fields; every other fact goes into meta_data.
TOP_LEVEL = ("commit_sha", "branch", "tag", "committed_at")
SHORT_SHA = 7


def gather(cwd: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Every fact git and the CI tell; git (what is checked out) first, CI fills the gaps."""
    return {**ci_facts(env), **git_facts(cwd)}


def default_version(facts: Mapping[str, str]) -> str | None:
    """The tag, else the short commit SHA, else None."""
    if tag := facts.get("tag"):
        return tag
    if sha := facts.get("commit_sha"):
        return sha[:SHORT_SHA]
    return None


def payload(
    fields: Mapping[str, Any], meta: Mapping[str, Any], facts: Mapping[str, str]
) -> dict[str, Any]:
    """The JSON body: `fields` (flags, None = not given) over `facts`; `meta` over the
    facts that are not deployment fields."""
    body: dict[str, Any] = {k: v for k, v in facts.items() if k in TOP_LEVEL}
    body.update({k: v for k, v in fields.items() if v is not None})
    if "version" not in body and (version := default_version({**facts, **body})):
        body["version"] = version
    meta_data = {k: v for k, v in facts.items() if k not in TOP_LEVEL}
    meta_data.update(meta)
    if meta_data:
        body["meta_data"] = meta_data
    return body
