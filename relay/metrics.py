"""Prometheus metrics of relay itself (one registry per application)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from relay.models import ForwarderInfo
from relay.store.base import Claimed, Completion

# The *_created series only add noise to every scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]

# The classic text format, which generate_latest writes, named with its version (what a
# scraper that negotiates formats looks for; every scraper reads 0.0.4).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

CIRCUIT_VALUES = {"active": 0.0, "circuit-open": 1.0, "disabled": 2.0}


class Metrics:
    """Counters updated on the hot path; queue gauges refreshed at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "relay_events_received",
            "Events recorded, by type and component.",
            ["type", "component"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "relay_delivery_attempts",
            "Delivery attempts by forwarder and outcome.",
            ["forwarder", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "relay_delivery_latency_seconds",
            "From the event's acknowledgement to its delivery.",
            ["forwarder"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "relay_queue_depth", "Pending deliveries.", ["forwarder"], registry=self.registry
        )
        self.oldest_age = Gauge(
            "relay_oldest_pending_age_seconds",
            "Age of the oldest pending delivery.",
            ["forwarder"],
            registry=self.registry,
        )
        self.circuit = Gauge(
            "relay_forwarder_state",
            "0 active, 1 circuit open, 2 disabled.",
            ["forwarder"],
            registry=self.registry,
        )

    def refresh(self, forwarders: list[ForwarderInfo], now_ts: float) -> None:
        """Set the queue and circuit gauges from a fresh look at the store."""
        for info in forwarders:
            self.queue_depth.labels(info.name).set(info.counts.pending)
            oldest = info.counts.oldest_pending_at
            self.oldest_age.labels(info.name).set(now_ts - oldest.timestamp() if oldest else 0.0)
            self.circuit.labels(info.name).set(CIRCUIT_VALUES[info.state])

    def observe_delivery(self, completion: Completion, claimed: Claimed) -> None:
        """Count an attempt; time ack → delivered for a successful one."""
        self.attempts.labels(completion.forwarder, completion.attempt.outcome).inc()
        if completion.status == "delivered":
            latency = (completion.finished_at - claimed.event_created_at).total_seconds()
            self.latency.labels(completion.forwarder).observe(max(latency, 0.0))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
