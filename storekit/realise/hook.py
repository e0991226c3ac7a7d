"""Where a derivation is built: on a remote builder or here, decided per derivation as Nix's build hook does.

`realise` does not know how to reach other machines (that is `storekit.remote`, a later workflow); it
asks a `BuildHook` it is handed. For each derivation the hook answers as Nix's `build-remote` does:
it built it (`BuildResult`), *decline* (no machine of the right system and features has a free slot,
or none exists: build here), or *postpone* (a right machine exists but is busy and this machine has
no free build slot: ask again shortly). With `--max-jobs 0` there are no local slots, so a derivation
that no machine can take is an error, as in Nix, except when the machines that could take it are
unreachable: then it is built here after all (the hook says so once).
"""

from __future__ import annotations

import threading
from typing import Literal, Protocol

from storekit.errors import BuildError
from storekit.realise.plan import Goal
from storekit.realise.runner import BuildResult, LogSink

Answer = BuildResult | Literal["decline", "postpone"]
NO_BUILDER = (
    "unable to start any build; either increase '--max-jobs' or enable remote builds "
    "(no builder in --builders can build it)"
)


class BuildHook(Protocol):
    """What the remote builders offer the scheduler."""

    @property
    def slots(self) -> int:
        """Builds the machines can run at once (added to the local jobs)."""

    def try_build(
        self, goal: Goal, cancel: threading.Event, on_log: LogSink | None, *, willing: bool
    ) -> Answer:
        """Build `goal` remotely if a machine can take it now (`willing`: a local slot is free)."""

    def fell_back(self, goal: Goal) -> bool:
        """True when machines that could build `goal` exist but are all unreachable."""


class LocalSlots:
    """The local build slots (`--max-jobs`); one is lent to a fallback build even with none."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._free = threading.Semaphore(max(1, jobs))

    def try_take(self) -> bool:
        return self.jobs > 0 and self._free.acquire(blocking=False)

    def take(self, cancel: threading.Event) -> None:
        while not self._free.acquire(timeout=0.2):
            if cancel.is_set():
                raise BuildError("", "cancelled")

    def give_back(self) -> None:
        self._free.release()


def build_somewhere(
    goal: Goal,
    cancel: threading.Event,
    hook: BuildHook,
    slots: LocalSlots,
    build_here: LocalBuild,
    on_log: LogSink | None,
) -> BuildResult:
    """Ask the hook until it builds `goal` or declines; when it declines, build here in a local slot."""
    while True:
        mine = slots.try_take()
        try:
            answer = hook.try_build(goal, cancel, on_log, willing=mine)
            if isinstance(answer, BuildResult):
                return answer
            if answer == "decline" and mine:
                return build_here(goal, cancel)
        finally:
            if mine:
                slots.give_back()
        if answer == "decline":
            if slots.jobs == 0 and not hook.fell_back(goal):
                raise BuildError(str(goal.drv_path), NO_BUILDER)
            slots.take(cancel)
            try:
                return build_here(goal, cancel)
            finally:
                slots.give_back()
        if cancel.wait(0.05):
            raise BuildError(str(goal.drv_path), "cancelled")


class LocalBuild(Protocol):
    def __call__(self, goal: Goal, cancel: threading.Event, /) -> BuildResult: ...
