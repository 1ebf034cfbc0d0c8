"""The output log's batching: order, bounded memory that keeps the tail, lost answers."""

from __future__ import annotations

import threading
from typing import Any

from relay.client.output_log import BATCH_BYTES, OutputLog
from relay.client.transport import Answer, ClientError, Connection, Transient, Transport

PATH = "/components/web/deployments/d1/output"


class FakeRelay(Transport):
    """A Transport answering from a list of scripted failures, then like relay would."""

    def __init__(self, failures: list[ClientError] | None = None, apply_failed: bool = False):
        super().__init__(Connection(url="http://relay.invalid", token="t"))
        self.failures = list(failures or [])
        self.apply_failed = apply_failed  # a failed append still landed (the answer was lost)
        self.log: list[str] = []
        self.posts: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a POST has started

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Answer:
        assert path == PATH
        if method == "GET":
            return Answer(200, "".join(f"{line}\n" for line in self.log))
        self.entered.set()
        self.gate.wait(10)
        lines = kw["text"].splitlines()
        self.posts.append(lines)
        if self.failures:
            if self.apply_failed:
                self.log += lines
            raise self.failures.pop(0)
        self.log += lines
        return Answer(200, {"ok": True, "appended": len(lines), "lines": len(self.log)})


def test_lines_arrive_in_order_in_batches() -> None:
    """Every line, in order; lines that arrive together share a request."""
    relay = FakeRelay()
    relay.gate.clear()  # hold the first request so the rest pile up
    log = OutputLog(relay, PATH, interval=0.01)
    for i in range(1000):
        log.add(f"line {i}")
    relay.gate.set()
    assert log.close(5)
    assert relay.log == [f"line {i}" for i in range(1000)]
    assert len(relay.posts) < 10


def test_a_batch_stays_under_the_size_limit() -> None:
    """A flood is cut into requests of at most BATCH_BYTES."""
    relay = FakeRelay()
    log = OutputLog(relay, PATH, interval=0.01)
    line = "x" * 999
    for _ in range(3 * BATCH_BYTES // 1000):
        log.add(line)
    assert log.close(5)
    assert all(sum(len(x) + 1 for x in post) <= BATCH_BYTES for post in relay.posts)
    assert len(relay.log) == 3 * BATCH_BYTES // 1000


def test_when_relay_lags_the_oldest_lines_go_and_the_tail_stays() -> None:
    """Past max_pending, the oldest unsent lines are dropped, the gap is marked, and the
    last lines always arrive."""
    relay = FakeRelay()
    relay.gate.clear()
    log = OutputLog(relay, PATH, interval=0.01, max_pending=100)
    log.add("first")
    assert relay.entered.wait(5)  # "first" is in flight: it is never dropped
    for i in range(50):
        log.add(f"l{i:02}")  # 4 bytes each: the last 25 fit in 100
    relay.gate.set()
    assert log.close(5)
    assert relay.log == ["first", "[relay: 25 lines were not sent]"] + [
        f"l{i:02}" for i in range(25, 50)
    ]


def test_a_lost_answer_is_checked_before_the_batch_is_sent_again() -> None:
    """A 502 for an append that relay made: the log is read, the lines are not repeated."""
    relay = FakeRelay([Transient("relay answered 502", maybe_applied=True)], apply_failed=True)
    log = OutputLog(relay, PATH, interval=0.01)
    log.add("a")
    log.add("b")
    assert log.close(5)
    assert relay.log == ["a", "b"]


def test_a_refused_append_stops_sending() -> None:
    """A 413 (the log is full) is final: close reports lines unsent, without retrying."""
    relay = FakeRelay([ClientError("relay answered 413", 413)])
    log = OutputLog(relay, PATH, interval=0.01)
    log.add("a")
    assert not log.close(5)
    assert log.unsent == 1 and log.failure == "relay answered 413"
    assert len(relay.posts) == 1
