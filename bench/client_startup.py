"""How fast the CI-side commands start: `relay deploy --help` against `python -c pass`.

A pipeline runs `relay deploy …` several times per job, so the client must not pay
for the server's imports (aiohttp's server, pydantic models, the store). Each round
launches every command `LAUNCHES` times in turn and keeps the median wall time; the
figure is the median of the rounds, the baseline the bare interpreter's start-up.

    .venv/bin/python bench/client_startup.py          # alone, prints one table
    .venv/bin/python bench/run.py client_startup      # as a row of `make bench`
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from _harness import Options, PythonLoad, Result

LAUNCHES = 15
TARGET_RATIO = 4.0  # at most 4x the bare interpreter's start-up


def _relay() -> list[str]:
    script = Path(sys.executable).with_name("relay")
    return [str(script)] if script.exists() else [sys.executable, "-m", "relay.cli"]


COMMANDS = {
    "baseline": [sys.executable, "-c", "pass"],
    "client": [*_relay(), "deploy", "--help"],
    # What the client would cost if it loaded the server side, for the notes.
    "server": [sys.executable, "-c", "import relay.app"],
}


def _launch(argv: list[str]) -> float:
    """Milliseconds from spawning `argv` to its exit (which must be 0)."""
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    took = (time.perf_counter() - began) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return took


def run(opts: Options) -> list[Result]:
    """Interleaved rounds of the three start-ups; one row: client vs bare interpreter."""
    rounds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():
        _launch(argv)  # warm the page cache and the bytecode
    for _ in range(max(1, opts.rounds)):
        samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(LAUNCHES):
            for name, argv in COMMANDS.items():
                samples[name].append(_launch(argv))
        for name, values in samples.items():
            rounds[name].append(statistics.median(values))
    server = statistics.median(rounds["server"])
    return [
        Result(
            benchmark="client",
            metric="`relay deploy --help` start-up, ms",
            relay=rounds["client"],
            baseline=rounds["baseline"],
            target=TARGET_RATIO,
            higher_is_better=False,
            notes=[
                f"baseline: `python -c pass`; {LAUNCHES} launches per round, median per round",
                f"for scale, importing the server side (`relay.app`) takes {server:.0f} ms",
            ],
        )
    ]


def main() -> None:
    """Print the figures of a stand-alone run."""
    (result,) = run(Options(load=PythonLoad(), rounds=5))
    ratio = result.ratio or 0.0
    print(f"{'command':34} {'median ms':>10}")
    print(f"{'relay deploy --help':34} {result.relay_figure:10.1f}")
    print(f"{'python -c pass (baseline)':34} {result.baseline_figure or 0:10.1f}")
    print(f"ratio {ratio:.2f} (target <= {TARGET_RATIO}): {'met' if result.met else 'MISSED'}")
    for note in result.notes:
        print(f"  {note}")


if __name__ == "__main__":
    main()
