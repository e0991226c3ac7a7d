"""The one progress event every long workflow emits: copy, relocate, build, gc, verify, optimise, …

Workflows report how far they are through a caller-given `Progress` callback and know nothing of
terminals; the CLI binds events to tqdm bars in `cli/_progress.py`, and a library user may log them or
ignore them. One value type, rather than a callback shape per workflow, so a binder works for all.

An event says which `activity` it belongs to, how many `unit`s of how many are `done` (`total` 0 when
unknown), and what it is about: the `item` (a store path, a file, a package) just finished or being
worked on, where it came from (`source`), a `message` worth a log line, what is `running` at once and
how many `failed`. `phase` marks the first and last event of a piece of work (`group`, e.g. one
bootstrap stage) so a binder can open and close a bar. Results are not events: a workflow returns
them (or hands them to a hook made for them).
"""

from __future__ import annotations

from collections.abc import Callable

from storekit.frozen import Frozen

TYPE_CHECKING = False  # no `typing` at run time: every `storekit build` reports progress (start-up)
if TYPE_CHECKING:
    from typing import Literal

    Activity = Literal["copy", "relocate", "build", "gc", "verify", "optimise", "patch", "seed", "sources"]
    Unit = Literal["paths", "bytes", "builds", "files", "packages"]
    Phase = Literal["start", "step", "done"]


_set = object.__setattr__


class ProgressEvent(Frozen):
    """How far one piece of long work is (see the module docstring)."""

    __slots__ = (
        "activity",
        "done",
        "failed",
        "group",
        "item",
        "message",
        "phase",
        "running",
        "source",
        "total",
        "unit",
    )
    __match_args__ = (
        "activity",
        "done",
        "total",
        "unit",
        "item",
        "source",
        "message",
        "running",
        "failed",
        "group",
        "phase",
    )
    activity: Activity
    done: int
    total: int
    unit: Unit
    item: str
    source: str
    message: str
    running: tuple[str, ...]
    failed: int
    group: str
    phase: Phase

    def __init__(
        self,
        activity: Activity,
        done: int = 0,
        total: int = 0,
        unit: Unit = "paths",
        item: str = "",
        source: str = "",
        message: str = "",
        running: tuple[str, ...] = (),
        failed: int = 0,
        group: str = "",
        phase: Phase = "step",
    ) -> None:
        _set(self, "activity", activity)
        _set(self, "done", done)
        _set(self, "total", total)
        _set(self, "unit", unit)
        _set(self, "item", item)
        _set(self, "source", source)
        _set(self, "message", message)
        _set(self, "running", running)
        _set(self, "failed", failed)
        _set(self, "group", group)
        _set(self, "phase", phase)


Progress = Callable[[ProgressEvent], None]
"""Where a workflow sends its events; called on the workflow's threads, so keep it quick."""
