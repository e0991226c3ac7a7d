"""What every benchmark shares: timing a callable or a command, and printing ratio rows."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    """One comparison: storekit's time against a reference tool's time for the same work."""

    task: str
    storekit_s: float
    reference: str
    reference_s: float
    note: str = ""

    @property
    def speed_ratio(self) -> float:
        """How many times faster storekit is (>1 means faster than the reference)."""
        return self.reference_s / self.storekit_s if self.storekit_s else float("inf")


def best_of(fn: Callable[[], object], repeat: int = 3, setup: Callable[[], object] | None = None) -> float:
    """The best wall time of `repeat` runs (warm caches), running `setup` untimed before each."""
    best = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_cmd(argv: Sequence[str], **kw: object) -> None:
    subprocess.run(list(argv), check=True, stdout=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]


def print_rows(title: str, rows: Sequence[Row]) -> None:
    print(f"\n== {title}")
    print(f"{'task':44} {'storekit':>10} {'reference':>22} {'ratio':>8}")
    for r in rows:
        ref = f"{r.reference} {r.reference_s:.3f}s"
        print(f"{r.task:44} {r.storekit_s:9.3f}s {ref:>22} {r.speed_ratio:7.2f}x  {r.note}")
