"""The one tqdm binding: progress events drawn as bars on stderr, on a terminal only.

Workflows emit `storekit.progress.ProgressEvent`s and know nothing of tqdm; `progress_bar` turns them
into one bar here (for bootstrap, `StageBars` keeps one per stage). A bar is made at the first event,
since only then are the total and the unit known, and never when stderr is not a terminal (logs and
pipes stay clean) or the user asked for quiet.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from storekit.progress import Progress, ProgressEvent

TYPE_CHECKING = False  # no `typing` at run time: every `storekit build` imports this module
if TYPE_CHECKING:
    from typing import Any

#: tqdm's unit and unit_scale for each unit of `ProgressEvent`.
UNITS = {"bytes": ("B", True), "paths": ("path", False), "builds": ("drv", False), "files": ("file", False),
         "packages": ("pkg", False)}  # fmt: skip
#: Bytes are drawn in MiB with two decimals, the unit of the summary a command prints after the bar.
_MIB_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total:.2f} MiB [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)


class TerminalBar:
    """A lazily made tqdm bar that follows events: their total, position and a trailing note."""

    def __init__(self, *, desc: str) -> None:
        self._desc = desc
        self._bar: Any = None

    def show(self, event: ProgressEvent) -> None:
        if self._bar is None:
            from tqdm import tqdm

            if event.unit == "bytes":
                self._bar = tqdm(total=event.total, desc=self._desc, unit="MiB", unit_scale=1 / (1 << 20),
                                 bar_format=_MIB_FORMAT, file=sys.stderr)  # fmt: skip
            else:
                unit, scale = UNITS[event.unit]
                self._bar = tqdm(
                    total=event.total, desc=self._desc, unit=unit, unit_scale=scale, file=sys.stderr
                )
        self._bar.total = event.total
        self._bar.set_postfix_str(note(event), refresh=False)
        delta = event.done - self._bar.n
        if delta:
            self._bar.update(delta)
        else:
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def note(event: ProgressEvent) -> str:
    """What a bar shows after its counts: the builds running (and failures), else the item's name."""
    if event.running or event.failed:
        return ", ".join(event.running)[:60] + (f" ({event.failed} failed)" if event.failed else "")
    name = os.path.basename(event.item)[:40]
    return f"{event.message}, {name}" if event.message and event.unit == "bytes" else name


def on_terminal(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(quiet: bool, *, desc: str) -> Iterator[Progress | None]:
    """A `Progress` drawing one bar, closed on the way out; None when quiet or stderr is not a terminal."""
    if not on_terminal(quiet):
        yield None
        return
    bar = TerminalBar(desc=desc)
    try:
        yield bar.show
    finally:
        bar.close()


@contextmanager
def stage_bars(quiet: bool) -> Iterator[Progress]:
    """A bar per group (bootstrap stage) from its `start` to its `done` event, on a terminal; the
    seed's and the sources' messages, and without bars each build's, as plain lines on stderr."""
    bars: dict[str, TerminalBar] = {}
    fancy = on_terminal(quiet)

    def show(e: ProgressEvent) -> None:
        if e.activity in ("seed", "sources"):
            if not quiet and e.message:
                print(e.message, file=sys.stderr)
        elif e.phase == "start" and fancy:
            bars[e.group] = TerminalBar(desc=e.group)
            bars[e.group].show(e)
        elif e.phase == "done" and e.group in bars:
            bars.pop(e.group).close()
        elif e.group in bars:
            bars[e.group].show(e)
        elif e.phase == "step" and not quiet and e.message:
            print(f"{e.group}: {e.message}", file=sys.stderr)

    try:
        yield show
    finally:
        for bar in bars.values():
            bar.close()
