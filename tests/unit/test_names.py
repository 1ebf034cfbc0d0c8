"""Names as people type them (relay/records/names.py): the slug rule, matching, collisions."""

from __future__ import annotations

import pytest

from relay.errors import ValidationFailed
from relay.records.names import NameCollision, component_named, fold, slug_of, stage_named
from relay.store.memory.store import MemoryStore


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("FooApp", "fooapp"),
        ("Foo App", "foo-app"),
        ("Billing.API", "billing.api"),
        ("QA 2", "qa-2"),
        ("my-api.v2", "my-api.v2"),
        ("A_B", "a_b"),
        ("  Ünïcode  App!! ", "unicode-app"),
        ("-app/1", "app-1"),
        ("a" * 101, "a" * 100),
    ],
)
def test_slug_rule(name: str, slug: str) -> None:
    """The documented slug rule: lowercase, accents dropped, other runs become one '-'."""
    assert slug_of(name) == slug


def test_fold_ignores_case_and_surrounding_spaces() -> None:
    """Names match case-insensitively, as Retrace matches them."""
    assert fold(" Foo  App ") == fold("foo app") == fold("FOO APP")
    assert fold("Foo-App") != fold("Foo App")


async def test_first_spelling_is_kept_and_case_variants_share_it() -> None:
    """A later spelling in other case is the same component, shown as first sent."""
    store = MemoryStore()
    first = await component_named(store, "Foo App", "AppName")
    again = await component_named(store, "FOO APP", "AppName")
    assert first == again
    assert (again.slug, again.name) == ("foo-app", "Foo App")


async def test_two_names_folding_into_one_slug_is_a_409() -> None:
    """'Foo-App' after 'Foo App' would share component foo-app: refused, naming both."""
    store = MemoryStore()
    await component_named(store, "Foo App", "AppName")
    with pytest.raises(NameCollision) as caught:
        await component_named(store, "Foo-App", "AppName")
    assert caught.value.status == 409
    assert "'Foo App'" in caught.value.message and "'foo-app'" in caught.value.message


def test_letters_without_ascii_form_get_a_digest_of_the_name() -> None:
    """'日本語' makes a slug (it was a 422), and 'Биллинг 2' and 'Доставка 2' do not share
    component '2': a name whose letters have no ASCII form carries a digest of itself."""
    cjk, billing, delivery = slug_of("日本語"), slug_of("Биллинг 2"), slug_of("Доставка 2")
    assert len(cjk) == 10 and cjk.isalnum() and cjk.isascii()
    assert billing.startswith("2-") and delivery.startswith("2-") and billing != delivery
    assert slug_of("БИЛЛИНГ 2") == billing
    assert slug_of("Ünïcode App") == "unicode-app"
    long = slug_of("a" * 120 + " Ж")
    assert len(long) == 100 and long.startswith("a" * 89 + "-")


@pytest.mark.parametrize(
    ("name", "other"),
    [("Straße App", "STRASSE APP"), ("ﬁnance", "FINANCE"), ("Σοφία", "ΣΟΦΊΑ")],
)
def test_names_that_match_have_one_slug(name: str, other: str) -> None:
    """Two spellings Retrace matches as one name (same fold) make the same slug, so the
    token is checked against the component the name really is."""
    assert fold(name) == fold(other)
    assert slug_of(name) == slug_of(other)


async def test_a_cyrillic_app_name_names_a_component() -> None:
    """A Retrace AppName in Cyrillic is a component of its own, matched case-insensitively."""
    store = MemoryStore()
    first = await component_named(store, "Биллинг", "AppName")
    again = await component_named(store, "БИЛЛИНГ", "AppName")
    assert first == again and first.name == "Биллинг"


async def test_a_name_without_letters_or_digits_is_a_422() -> None:
    """Nothing is left to make a slug of: refused, naming the field."""
    with pytest.raises(ValidationFailed) as caught:
        await component_named(MemoryStore(), "!!!", "AppName")
    assert caught.value.details[0]["field"] == "AppName"


async def test_stage_keeps_its_first_spelling_per_component() -> None:
    """'qa 2' after 'QA 2' is stage 'QA 2'; another component keeps its own spelling."""
    store = MemoryStore()
    assert (await stage_named(store, "api", "QA 2")).slug == "QA 2"
    assert (await stage_named(store, "api", "qa 2")).slug == "QA 2"
    assert (await stage_named(store, "web", "qa 2")).slug == "qa 2"
