"""Releases (relay/records/releases.py): the release.created payload and who receives it."""

from __future__ import annotations

from forwarders.base import Event, MatchRule
from forwarders.common import summary
from forwarders.webhook import slack_message
from relay.records.releases import Release, event_data
from tests.support import T0, make_record


def _release() -> Release:
    deployments = [
        make_record("web", "1.0", stage="production"),
        make_record("api", "4.2", stage="production"),
    ]
    return Release(id="r1", name="Spring", created_at=T0, deployments=deployments)


def test_payload_lists_deployments_and_components() -> None:
    """The payload has the release, its deployments (no per-answer facts), its components."""
    data = event_data(_release())
    assert (data["id"], data["name"], data["components"]) == ("r1", "Spring", ["api", "web"])
    assert [d["component"] for d in data["deployments"]] == ["web", "api"]
    assert all("is_live" not in d and "deliveries" not in d for d in data["deployments"])
    assert data["created_at"] == "2018-05-27T13:15:30.311Z"


def test_only_catch_all_matches_accept_a_release() -> None:
    """A release has no component, stage or result: only "*" patterns accept it."""
    data = event_data(_release())
    assert MatchRule().accepts("release.created", data)
    assert MatchRule(events=["release.*"]).accepts("release.created", data)
    assert not MatchRule(events=["deployment.*"]).accepts("release.created", data)
    assert not MatchRule(stages=["production"]).accepts("release.created", data)
    assert not MatchRule(components=["web"]).accepts("release.created", data)


def test_chat_summary_of_a_release_names_its_deployments() -> None:
    """Slack/Teams messages of a release read "Release Spring (Fünke): web 1.0, api 4.2"."""
    release = _release().model_copy(update={"code_name": "Fünke"})
    event = Event("e1", "release.created", T0, event_data(release))
    assert summary(event) == "Release Spring (Fünke): web 1.0, api 4.2"
    assert slack_message(event) == {"text": "Release Spring (Fünke): web 1.0, api 4.2"}
