"""The Retrace dialect's mapping (relay/records/retrace.py): AppName to a component slug."""

from __future__ import annotations

import pytest

from relay.errors import ValidationFailed
from relay.records.retrace import component_of


@pytest.mark.parametrize(
    ("app_name", "slug"), [("FooApp", "fooapp"), ("my-api.v2", "my-api.v2"), ("A_B", "a_b")]
)
def test_app_name_lowercases_to_a_slug(app_name: str, slug: str) -> None:
    """AppName is the component, lowercased."""
    assert component_of(app_name) == slug


@pytest.mark.parametrize("app_name", ["My App", "-app", "app/1", "Ünïcode", "a" * 101])
def test_app_name_that_cannot_be_a_slug_is_a_422_on_app_name(app_name: str) -> None:
    """An AppName that is no slug once lowercased is refused, naming the field."""
    with pytest.raises(ValidationFailed) as caught:
        component_of(app_name)
    assert caught.value.details[0]["field"] == "AppName"
