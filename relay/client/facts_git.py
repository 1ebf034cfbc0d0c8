"""Facts about the checked-out commit, read from `git` in the working directory."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

GIT_TIMEOUT = 5.0
# scheme://, the authority (userinfo@host:port), and the rest of a URL.
_AUTHORITY = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)(.*)", re.DOTALL)


def _git(cwd: Path, *args: str) -> str | None:
    """The trimmed output of `git ARGS`, or None when git is missing or the command fails."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return None  # UnicodeDecodeError: git allows any bytes in a ref name
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def public_url(url: str) -> str:
    """`url` without any user or password in it (CI clones often embed a token there).

    Plain string work, not urlsplit: a remote urllib cannot parse (a port that is no
    number, say) must lose its credentials too, and must not raise."""
    found = _AUTHORITY.match(url)
    if found is None:
        return url  # scp-like `git@host:org/repo.git`: no secret to strip
    scheme, authority, rest = found.groups()
    return f"{scheme}{authority.rpartition('@')[2]}{rest}"


def utc_iso(text: str) -> str | None:
    """An ISO-8601 time (any offset) as UTC with a `Z`, or None when it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def git_facts(cwd: Path) -> dict[str, str]:
    """sha, branch, tag, repository URL, commit time and author of HEAD in `cwd`.

    Keys: commit_sha, branch, tag, repository_url, committed_at, commit_author; a fact
    git cannot tell (detached HEAD, no tag, no remote) is left out."""
    sha = _git(cwd, "rev-parse", "--verify", "HEAD")
    if sha is None:
        return {}
    facts = {"commit_sha": sha}
    branch = _git(cwd, "symbolic-ref", "--quiet", "--short", "HEAD")
    if branch:
        facts["branch"] = branch
    tag = _git(cwd, "describe", "--tags", "--exact-match", "HEAD")
    if tag:
        facts["tag"] = tag
    remote = _git(cwd, "remote", "get-url", "origin")
    if remote:
        facts["repository_url"] = public_url(remote)
    shown = _git(cwd, "show", "-s", "--format=%cI%n%an <%ae>", "HEAD")
    if shown:
        committed, _, author = shown.partition("\n")
        if when := utc_iso(committed):
            facts["committed_at"] = when
        if author.strip():
            facts["commit_author"] = author.strip()
    return facts
