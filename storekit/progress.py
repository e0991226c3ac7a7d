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
from dataclasses import dataclass
from typing import Literal

Activity = Literal["copy", "relocate", "build", "gc", "verify", "optimise", "patch", "seed", "sources"]
Unit = Literal["paths", "bytes", "builds", "files", "packages"]
Phase = Literal["start", "step", "done"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """How far one piece of long work is (see the module docstring)."""

    activity: Activity
    done: int = 0
    total: int = 0
    unit: Unit = "paths"
    item: str = ""
    source: str = ""
    message: str = ""
    running: tuple[str, ...] = ()
    failed: int = 0
    group: str = ""
    phase: Phase = "step"


Progress = Callable[[ProgressEvent], None]
"""Where a workflow sends its events; called on the workflow's threads, so keep it quick."""
