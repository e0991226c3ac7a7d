"""Where a derivation is built (realise.hook), with a fake hook: Nix's accept / decline / postpone."""

from __future__ import annotations

import threading

import pytest

from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError
from storekit.hashing import Hash
from storekit.realise.hook import Answer, LocalSlots, build_somewhere
from storekit.realise.plan import Action, Goal
from storekit.realise.runner import BuildResult, LogSink
from storekit.storepath import StoreDir

SD = StoreDir("/opt/store")
DRV = SD.make_text_path("x.drv", Hash.of(b"x"))
OUT = SD.make_output_path("out", Hash.of(b"x"), "x")
GOAL = Goal(DRV, Derivation({"out": DerivationOutput(str(OUT))}, {}, (), "x86_64-linux", "/b", (), {}),
            {"out": OUT}, frozenset({"out"}), frozenset({"out"}), Action.BUILD)  # fmt: skip


def result(where: str) -> BuildResult:
    return BuildResult(DRV, {"out": OUT}, (), where, 0.0)


class FakeHook:
    def __init__(self, answers: list[Answer], fell_back: bool = False) -> None:
        self.answers, self._fell_back = answers, fell_back
        self.willing: list[bool] = []

    @property
    def slots(self) -> int:
        return 1

    def try_build(
        self, goal: Goal, cancel: threading.Event, on_log: LogSink | None, *, willing: bool
    ) -> Answer:
        self.willing.append(willing)
        return self.answers.pop(0)

    def fell_back(self, goal: Goal) -> bool:
        return self._fell_back


def here(goal: Goal, cancel: threading.Event) -> BuildResult:
    return result("here")


def test_accepted_remotely() -> None:
    hook = FakeHook([result("there")])
    assert build_somewhere(GOAL, threading.Event(), hook, LocalSlots(1), here, None).log_file == "there"
    assert hook.willing == [True]


def test_declined_builds_here_in_a_local_slot() -> None:
    hook = FakeHook(["decline"])
    assert build_somewhere(GOAL, threading.Event(), hook, LocalSlots(1), here, None).log_file == "here"


def test_postponed_then_accepted() -> None:
    hook = FakeHook(["postpone", "postpone", result("there")])
    assert build_somewhere(GOAL, threading.Event(), hook, LocalSlots(0), here, None).log_file == "there"
    assert hook.willing == [False, False, False]  # --max-jobs 0: never willing


def test_max_jobs_0_and_no_machine_is_an_error() -> None:
    with pytest.raises(BuildError, match="unable to start any build"):
        build_somewhere(GOAL, threading.Event(), FakeHook(["decline"]), LocalSlots(0), here, None)


def test_max_jobs_0_falls_back_here_when_the_machines_are_unreachable() -> None:
    hook = FakeHook(["decline"], fell_back=True)
    assert build_somewhere(GOAL, threading.Event(), hook, LocalSlots(0), here, None).log_file == "here"


def test_a_busy_local_slot_makes_the_hook_unwilling() -> None:
    slots = LocalSlots(1)
    assert slots.try_take()
    hook = FakeHook(["postpone", result("there")])
    assert build_somewhere(GOAL, threading.Event(), hook, slots, here, None).log_file == "there"
    assert hook.willing == [False, False]
