"""What a dispatcher shares with the other relay instances through the store: the leases
of its sends in flight, and each forwarder's circuit breaker and disabled switch.

With SQLite there is one instance, and this costs nearly nothing: a success on a closed
circuit writes nothing, and renewals only touch deliveries being sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

import structlog

from relay.delivery.circuit import CircuitSnapshot, Signal
from relay.delivery.target import Target
from relay.store.base import Store
from relay.timeutil import utcnow

log = structlog.get_logger("relay.dispatch")


async def renew_leases(store: Store, owner: str, held: set[str], lease: float) -> None:
    """Every lease/3 seconds, extend the leases of the deliveries in `held` (sends in
    flight), so that a send longer than the lease is not claimed by another instance,
    while a dead instance's claims still expire. Runs until cancelled."""
    while True:
        await asyncio.sleep(lease / 3)
        ids = list(held)
        if not ids:
            continue
        try:
            kept = await store.renew(owner, ids, utcnow() + timedelta(seconds=lease))
        except Exception as exc:
            log.warning("lease_renewal_failed", deliveries=len(ids), error=repr(exc))
            continue
        still = len(held.intersection(ids))
        if kept < still:  # another instance took them over: we stalled past the lease
            log.warning("lease_lost", deliveries=still - kept)


async def adopt_shared_state(store: Store, targets: Mapping[str, Target]) -> None:
    """Adopt the circuit and disabled state that other instances may have changed."""
    disables = {name: target.disables for name, target in targets.items()}
    circuits = await store.circuits()
    disabled = await store.disabled_forwarders()
    for name, target in targets.items():
        target.breaker.restore(circuits.get(name, CircuitSnapshot()))
        # A disable made here meanwhile, or not yet stored, is newer than what was read.
        if not target.disabling and target.disables == disables[name]:
            target.disabled_reason = disabled.get(name)


async def share_circuit(store: Store, target: Target, signal: Signal | None) -> None:
    """Move the forwarder's circuit after an attempt (None: the target was not called),
    applying the breaker's rules to the state stored for every instance."""
    breaker = target.breaker
    if signal is None or (signal == "success" and breaker.is_closed_clean()):
        breaker.on_skipped()  # nothing to share; a probe, if this was one, may go again
        return
    name, now, rules = target.config.name, utcnow(), replace(breaker)
    opened = False

    def change(shared: CircuitSnapshot) -> CircuitSnapshot:
        nonlocal opened
        new, opened = rules.moved(shared, signal, now)
        return new

    try:
        shared = await store.update_circuit(name, change)
    except Exception as exc:
        # The store is unreachable: this instance's breaker still protects the target.
        log.warning("circuit_not_shared", forwarder=name, error=repr(exc))
        shared = change(breaker.snapshot())
    breaker.restore(shared)
    breaker.probing = False
    if opened:
        log.warning("circuit_opened", forwarder=name, until=str(shared.opened_until))
