"""The one tqdm binding: progress bars on stderr for long commands (copy, build), on a terminal only.

Workflows report progress through callbacks and know nothing of tqdm; the commands turn those
callbacks into a bar here. A bar is made at the first report, since only then is the total known,
and never when stderr is not a terminal (logs and pipes stay clean) or the user asked for quiet.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_MIB_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total:.2f} MiB [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)


class TerminalBar:
    """A lazily made tqdm bar: `show` sets its total and position and its trailing note."""

    def __init__(self, *, desc: str, unit: str, unit_scale: bool = False) -> None:
        self._desc, self._unit, self._unit_scale = desc, unit, unit_scale
        self._bar: Any = None
        #: Bytes are shown in MiB with two decimals, as `show_bytes` prints the summary after the bar.
        self._format = _MIB_FORMAT if unit == "B" else None

    def show(self, *, total: int, done: int | None = None, advance: int = 0, postfix: str = "") -> None:
        """Move the bar to `done` (absolute) or by `advance`; `postfix` is shown after it."""
        if self._bar is None:
            from tqdm import tqdm

            if self._format is None:
                self._bar = tqdm(
                    total=total,
                    desc=self._desc,
                    unit=self._unit,
                    unit_scale=self._unit_scale,
                    file=sys.stderr,
                )
            else:
                self._bar = tqdm(
                    total=total,
                    desc=self._desc,
                    unit="MiB",
                    unit_scale=1 / (1024 * 1024),
                    bar_format=self._format,
                    file=sys.stderr,
                )
        self._bar.total = total
        self._bar.set_postfix_str(postfix, refresh=False)
        delta = advance if done is None else done - self._bar.n
        if delta:
            self._bar.update(delta)
        else:
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def terminal_bar(
    quiet: bool, *, desc: str, unit: str, unit_scale: bool = False
) -> Iterator[TerminalBar | None]:
    """A `TerminalBar` closed on the way out, or None when quiet or stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    bar = TerminalBar(desc=desc, unit=unit, unit_scale=unit_scale)
    try:
        yield bar
    finally:
        bar.close()
