"""Abuse limits as pure logic: a per-key token bucket and a per-client connection count.

The HTTP layer (relay/api/middleware.py) asks these objects; they do no I/O and take the
clock as an argument so that unit tests can drive them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """A token bucket per key: `rate` requests a second on average, `burst` at once.

    A `rate` of 0 disables the limit.
    """

    rate: float
    burst: int
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _last_sweep: float = 0.0

    @property
    def enabled(self) -> bool:
        """True when a limit is configured."""
        return self.rate > 0

    def take(self, key: str, now: float) -> float:
        """Spend one token of `key`; 0.0 when allowed, else the seconds until one is back."""
        if not self.enabled:
            return 0.0
        self._sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(
            float(self.burst), bucket.tokens + max(0.0, now - bucket.updated) * self.rate
        )
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _sweep(self, now: float) -> None:
        # A bucket idle for a whole refill period is full again: forgetting it loses
        # nothing and keeps the table small when many tokens come and go.
        refill = self.burst / self.rate
        if now - self._last_sweep < refill:
            return
        self._last_sweep = now
        full = [k for k, b in self._buckets.items() if now - b.updated >= refill]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait: float) -> int:
    """`Retry-After` is whole seconds: round up, never 0 (a client would retry at once)."""
    return max(1, math.ceil(wait))


@dataclass
class ConnectionCounter:
    """Requests in progress per client address; `limit` 0 means no cap."""

    limit: int
    _open: dict[str, int] = field(default_factory=dict)

    def acquire(self, client: str) -> bool:
        """Count one more request of `client`; False (and nothing counted) over the cap."""
        current = self._open.get(client, 0)
        if self.limit and current >= self.limit:
            return False
        self._open[client] = current + 1
        return True

    def release(self, client: str) -> None:
        """The request of `client` is finished."""
        current = self._open.get(client, 0) - 1
        if current > 0:
            self._open[client] = current
        else:
            self._open.pop(client, None)

    def open_for(self, client: str) -> int:
        """Requests of `client` in progress."""
        return self._open.get(client, 0)
