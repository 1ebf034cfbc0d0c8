"""Identifiers: time-ordered random UUIDs, made without a system call each."""

from __future__ import annotations

import random
import time

# uuid.uuid4() reads os.urandom for every id, one system call each; ids need to be
# unique, not secret, so a generator seeded once from the OS is enough.
_random = random.Random()
_RAND_B = (1 << 62) - 1


def new_id() -> str:
    """A UUID version 7: 48 bits of Unix milliseconds, then 74 random bits.

    Ids made close in time sort close together, so the database appends index entries
    to the same few pages instead of touching a random page per insert."""
    ms = time.time_ns() // 1_000_000
    rand = _random.getrandbits(74)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62
    text = f"{value | (rand & _RAND_B):032x}"
    # The canonical 8-4-4-4-12 form, as str(uuid.UUID) writes it, without the object.
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_hex_id() -> str:
    """A random 32-character hex id (request ids)."""
    return f"{_random.getrandbits(128):032x}"
