"""Pure parts of the client's facts: URLs without secrets, times, precedence."""

from __future__ import annotations

from relay.client.facts import payload
from relay.client.facts_ci import ci_facts, circleci, jenkins
from relay.client.facts_git import public_url, utc_iso


def test_public_url_drops_user_and_password() -> None:
    """A clone URL with a token keeps host, port and path only; scp-like URLs are kept."""
    assert public_url("https://ci:glpat-x@gitlab.example.com:8443/a/b.git") == (
        "https://gitlab.example.com:8443/a/b.git"
    )
    assert public_url("https://github.com/a/b") == "https://github.com/a/b"
    assert public_url("git@github.com:a/b.git") == "git@github.com:a/b.git"


def test_utc_iso_normalises_offsets_and_refuses_naive_times() -> None:
    """Offsets become UTC with a Z; a time without an offset is not a fact."""
    assert utc_iso("2026-03-01T10:00:00+01:00") == "2026-03-01T09:00:00Z"
    assert utc_iso("2026-03-01T10:00:00Z") == "2026-03-01T10:00:00Z"
    assert utc_iso("2026-03-01T10:00:00") is None
    assert utc_iso("yesterday") is None


def test_a_jenkins_tag_build_has_a_tag_and_no_branch() -> None:
    """In a multibranch tag build BRANCH_NAME is the tag: only the tag is reported."""
    facts = jenkins({"BRANCH_NAME": "v1.2", "TAG_NAME": "v1.2", "GIT_COMMIT": "abc"})
    assert facts == {"commit_sha": "abc", "tag": "v1.2"}


def test_outside_ci_there_are_no_ci_facts() -> None:
    """No provider's detector variable: nothing at all, not even a provider name."""
    assert ci_facts({"CI": "true", "HOME": "/root"}) == {}


def test_flags_win_and_unknown_facts_stay_out() -> None:
    """Flags override facts; meta flags override meta facts; absent flags add nothing."""
    body = payload(
        {"version": None, "branch": "flag", "stage": None},
        {"ci_actor": "me"},
        {"branch": "git", "commit_sha": "0123456789", "ci_actor": "bot"},
    )
    assert body == {
        "branch": "flag",
        "commit_sha": "0123456789",
        "version": "0123456",
        "meta_data": {"ci_actor": "me"},
    }


def test_public_url_of_a_malformed_url_still_drops_the_credentials() -> None:
    """A remote urllib cannot parse (a port that is no number, an unclosed IPv6 bracket)
    loses its user and password all the same, and never raises (it would stop the report)."""
    assert public_url("https://x-token:ghp_S3CR3T@github.com:notaport/a/b.git") == (
        "https://github.com:notaport/a/b.git"
    )
    assert public_url("https://u:p4ss@[::1/a/b.git") == "https://[::1/a/b.git"
    assert public_url("https://u:p4ss@host.example?x=1") == "https://host.example?x=1"
    assert public_url("https://u:p@ss@host.example/a") == "https://host.example/a"


def test_a_circleci_clone_url_loses_its_credentials() -> None:
    """A token in CIRCLE_REPOSITORY_URL is not sent to relay, as with every provider."""
    facts = circleci({"CIRCLE_REPOSITORY_URL": "https://x-token:ghp_S3CR3T@github.com/a/b.git"})
    assert facts["repository_url"] == "https://github.com/a/b.git"
