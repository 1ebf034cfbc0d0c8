"""Names as people type them (Retrace's AppName and EnvironmentName) mapped onto relay's.

The slug rule (AppName → component): the name is case-folded (`ß` → `ss`), accents are
dropped (NFKD), every run of other characters than `a-z 0-9 . _ -` becomes one `-`,
leading and trailing `-`, `.`, `_` are trimmed, and the result is cut at 100 characters:
"Foo App" → `foo-app`, "Billing.API" → `billing.api`, "QA 2" → `qa-2`. A name with
letters or digits that have no ASCII form ("Биллинг 2", "日本語", "Økonomi") gets the
first 10 hex digits of the SHA-256 of its folded form appended (`2-<digest>`,
`<digest>`, `konomi-<digest>`), so that it names a component of its own.

Names are matched case-insensitively (Unicode case folding, surrounding spaces ignored),
as Retrace matches them. The first spelling sent is kept and shown; a later name that
folds differently but would get the same slug ("Foo-App" after "Foo App") is refused
with 409 rather than silently sharing the component.

EnvironmentName → stage: the stage is the first spelling sent for that component (no
slug: relay's API takes any stage text, e.g. `?stage=QA%202`), so "qa 2" after "QA 2"
is the same stage.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from relay.errors import Conflict, ValidationFailed
from relay.store.dialect_base import DialectStore, NameRow
from relay.timeutil import utcnow

_OUTSIDE = re.compile(r"[^a-z0-9._-]+")
MAX_SLUG = 100
DIGEST = 10


class NameCollision(Conflict):
    """Two different names would name one component."""

    code = "name_collision"


def slug_of(name: str) -> str:
    """The component slug of a name typed by a person ('' when nothing is left)."""
    # From the folded name: spellings matched as one name ("Straße", "STRASSE") must
    # make one slug, the one their component has.
    folded = fold(name)
    decomposed = unicodedata.normalize("NFKD", folded)
    plain = decomposed.encode("ascii", "ignore").decode("ascii")
    slug = _OUTSIDE.sub("-", plain.lower()).strip("-._")
    if any(_lost(c) for c in decomposed):
        # Letters or digits of another script ("Биллинг", "日本語") would be dropped, and
        # names differing only in them would share a slug: a digest of the name keeps
        # them apart.
        digest = hashlib.sha256(folded.encode()).hexdigest()[:DIGEST]
        room = MAX_SLUG - DIGEST - 1
        slug = f"{slug[:room].rstrip('-._')}-{digest}".lstrip("-")
    return slug[:MAX_SLUG].rstrip("-._")


def _lost(char: str) -> bool:
    # A letter or digit that the ASCII slug cannot keep (accents alone are not lost).
    return not char.isascii() and unicodedata.category(char)[0] in "LN"


def fold(name: str) -> str:
    """The key a name is matched by: case-folded, surrounding spaces dropped."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Named:
    """What a name maps to: the component slug or stage, and the name as first sent."""

    slug: str
    name: str


async def component_named(store: DialectStore, name: str, field: str) -> Named:
    """The component of a typed name (kept on first use); ValidationFailed when no slug
    can be made of it, NameCollision when another name already has its slug."""
    slug = slug_of(name)
    if not slug:
        raise ValidationFailed(
            f"{field} {name!r} cannot name a component",
            details=[{"field": field, "message": "needs at least one letter or digit"}],
        )
    wanted = NameRow("component", fold(name), name, slug)
    kept = await store.claim_name(wanted, utcnow())
    if kept.folded != wanted.folded:
        raise NameCollision(
            f"{field} {name!r} would be component {slug!r}, which already belongs to "
            f"{kept.name!r}; use that name, or one that gives another slug"
        )
    return Named(kept.slug, kept.name)


async def stage_named(store: DialectStore, component: str, name: str) -> Named:
    """The stage of a typed environment name: its first spelling for this component."""
    key = fold(name)
    kept = await store.claim_name(NameRow(f"stage:{component}", key, name, key), utcnow())
    return Named(kept.name, kept.name)
