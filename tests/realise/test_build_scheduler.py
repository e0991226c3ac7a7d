"""The scheduler with fake work: dependency order, parallelism, --keep-going, cancellation, progress."""

from __future__ import annotations

import threading
import time

from test_build_plan import Graph

from storekit.errors import BuildError
from storekit.progress import ProgressEvent
from storekit.realise.plan import Goal
from storekit.realise.scheduler import Status, run_plan


def graph() -> Graph:
    """a -> b -> c (a chain) and d, e independent."""
    g = Graph()
    g.add("a")
    g.add("b", {"a": ("out",)})
    g.add("c", {"b": ("out",)})
    g.add("d")
    g.add("e")
    return g


class Recorder:
    def __init__(self, fail: set[str] = frozenset(), delay: float = 0.0) -> None:  # type: ignore[assignment]
        self.fail = fail
        self.delay = delay
        self.started: list[str] = []
        self.active = 0
        self.max_active = 0
        self.cancelled: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, goal: Goal, cancel: threading.Event) -> str:
        name = goal.name
        with self.lock:
            self.started.append(name)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            deadline = time.monotonic() + self.delay
            while time.monotonic() < deadline:
                if cancel.is_set():
                    self.cancelled.append(name)
                    raise BuildError(name, "cancelled")
                time.sleep(0.01)
            if name in self.fail:
                raise BuildError(name, "it failed on purpose")
            return name
        finally:
            with self.lock:
                self.active -= 1


def statuses(report) -> dict[str, Status]:  # type: ignore[no-untyped-def]
    return {p.name.removesuffix(".drv"): o.status for p, o in report.outcomes.items()}


def test_everything_in_dependency_order_and_in_parallel() -> None:
    g = graph()
    work = Recorder(delay=0.1)
    events: list[ProgressEvent] = []
    report = run_plan(g.plan("c", "d", "e"), build=work, jobs=2, progress=events.append)
    assert report.ok and report.error() is None
    assert work.started.index("a") < work.started.index("b") < work.started.index("c")
    assert work.max_active == 2
    assert events[-1].done == events[-1].total == 5
    assert all(len(e.running) <= 2 for e in events)


def test_the_longest_chain_starts_first() -> None:
    """Leaves nothing depends on (a test suite) wait while a chain others wait for can go on."""
    g = Graph()
    g.add("p")
    g.add("q", {"p": ("out",)})
    g.add("r", {"q": ("out",)})
    leaves = [f"x{i}" for i in range(8)]
    for leaf in leaves:
        g.add(leaf)
    plan = g.plan("r", *leaves)
    ready_in_plan_order = [p.name.removesuffix(".drv") for p in plan.order if not plan.goals[p].deps]
    assert ready_in_plan_order[0] != "p"  # first come, first served would start a leaf first
    work = Recorder()
    report = run_plan(plan, build=work, jobs=1)
    assert report.ok
    assert work.started[:2] == ["p", "q"]  # each step of the chain before any leaf
    assert sorted(work.started[2:]) == sorted(["r", *leaves])


def test_failure_stops_everything_without_keep_going() -> None:
    g = graph()
    work = Recorder(fail={"b"}, delay=0.05)
    report = run_plan(g.plan("c", "d", "e"), build=work, jobs=1)
    s = statuses(report)
    assert s["b"] is Status.FAILED and s["c"] is Status.DEPENDENCY_FAILED
    assert "c" not in work.started
    assert len(work.started) < 5  # it stopped instead of building d and e too
    error = report.error()
    assert isinstance(error, BuildError) and "failed on purpose" in str(error)


def test_keep_going_builds_all_that_does_not_depend_on_the_failure() -> None:
    g = graph()
    work = Recorder(fail={"b"})
    report = run_plan(g.plan("c", "d", "e"), build=work, jobs=1, keep_going=True)
    s = statuses(report)
    assert s == {
        "a": Status.BUILT,
        "b": Status.FAILED,
        "c": Status.DEPENDENCY_FAILED,
        "d": Status.BUILT,
        "e": Status.BUILT,
    }
    assert "1 build(s) failed, 1 not attempted" in str(report.error())


def test_running_builds_are_cancelled_after_a_failure() -> None:
    g = Graph()
    g.add("slow")
    g.add("bad")
    work = Recorder(fail={"bad"}, delay=0.0)
    slow_work = Recorder(delay=30)

    def build(goal: Goal, cancel: threading.Event) -> str:
        return (slow_work if goal.name == "slow" else work)(goal, cancel)

    started = time.monotonic()
    report = run_plan(g.plan("slow", "bad"), build=build, jobs=2)
    assert time.monotonic() - started < 10
    assert statuses(report) == {"slow": Status.CANCELLED, "bad": Status.FAILED}
    assert slow_work.cancelled == ["slow"]


def test_substitution_goals_use_the_substitute_work() -> None:
    g = graph()
    built, fetched = Recorder(), Recorder()
    report = run_plan(g.plan("c", subst={g.out("b")}), build=built, substitute=fetched)
    assert fetched.started == ["b"] and built.started == ["c"]
    assert statuses(report)["b"] is Status.SUBSTITUTED


def test_an_interrupt_cancels_the_running_builds_instead_of_waiting_for_them() -> None:
    """Ctrl-C (or SIGTERM, which the CLI turns into it) during a run: the running work is told to stop
    at once, and the interrupt reaches the caller; the pool does not wait 30 s for the builds."""
    g = graph()
    work = Recorder(delay=30)
    events: list[ProgressEvent] = []

    def progress(event: ProgressEvent) -> None:
        events.append(event)
        if len(events) == 2:  # both builds submitted: wait until both run, then interrupt
            while len(work.started) < 2:
                time.sleep(0.01)
            raise KeyboardInterrupt

    try:
        run_plan(g.plan("d", "e"), build=work, jobs=2, progress=progress)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt did not reach the caller")
    assert sorted(work.cancelled) == ["d", "e"]
