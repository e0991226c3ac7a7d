"""Running a `BuildPlan`: up to `jobs` builds at once, each as soon as the goals it depends on are done.

Of the goals ready at once, the one with the longest chain of goals waiting behind it starts first
(critical path first), so that a leaf (a test suite nothing depends on) does not take a job slot
while goals that others wait for queue behind it. Ties keep the plan's order. A leaf still takes a
slot that nothing else could use: how long it will hold it is not known here.

A goal that fails takes every goal depending on it down with it ("dependency failed"). Without
`keep_going` the first failure also stops the rest, as Nix does: nothing new starts and running builds
are cancelled (their builders killed). With `keep_going`, everything that does not depend on a
failure is still built. Progress is reported as `ProgressEvent`s after each change, so the CLI can
draw a progress line while this module stays free of output.

The scheduler does not know how to build or substitute: it calls the `Work` functions it is given,
which makes it testable with fakes and lets the driver bind them to a store.
"""

from __future__ import annotations

import heapq
import queue
import threading
from collections.abc import Callable, Mapping
from enum import Enum

from storekit.errors import BuildError, BuildsFailed, StorekitError
from storekit.frozen import Frozen
from storekit.progress import Progress, ProgressEvent
from storekit.realise.plan import Action, BuildPlan, Goal
from storekit.realise.runner import BuildResult
from storekit.storepath import StorePath

Work = Callable[[Goal, threading.Event], "BuildResult | None"]
"""Does one goal: its build's result (None for a substitution); raises `StorekitError` on failure;
stops once the event is set."""


_set = object.__setattr__


class Status(Enum):
    BUILT = "built"
    SUBSTITUTED = "substituted"
    VALID = "valid"
    FAILED = "failed"
    DEPENDENCY_FAILED = "dependency failed"
    CANCELLED = "cancelled"


class Outcome(Frozen):
    __slots__ = ("error", "goal", "result", "status")
    __match_args__ = ("goal", "status", "error", "result")
    goal: Goal
    status: Status
    error: StorekitError | None
    result: BuildResult | None
    """The build of the goal's derivation, when it was built (not substituted)."""

    def __init__(
        self,
        goal: Goal,
        status: Status,
        error: StorekitError | None = None,
        result: BuildResult | None = None,
    ) -> None:
        _set(self, "goal", goal)
        _set(self, "status", status)
        _set(self, "error", error)
        _set(self, "result", result)


OnFinish = Callable[[Outcome], None]
"""Told each goal's outcome as it ends, so a caller can record it at once: a run that is interrupted
later keeps what it learnt about the builds before."""


class Report(Frozen):
    __slots__ = ("outcomes",)
    __match_args__ = ("outcomes",)
    outcomes: Mapping[StorePath, Outcome]

    def __init__(
        self,
        outcomes: Mapping[StorePath, Outcome] | None = None,
    ) -> None:
        _set(self, "outcomes", dict() if outcomes is None else outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.status is Status.FAILED]

    @property
    def ok(self) -> bool:
        return all(
            o.status in (Status.BUILT, Status.SUBSTITUTED, Status.VALID) for o in self.outcomes.values()
        )

    def error(self) -> StorekitError | None:
        """One error for the whole run: the failure itself when there is one, else a summary."""
        failures = self.failures
        blocked = [o for o in self.outcomes.values() if o.status is Status.DEPENDENCY_FAILED]
        if not failures and not blocked:
            return None
        if len(failures) == 1 and not blocked:
            return failures[0].error
        lines = [str(o.error) for o in failures]
        lines += [f"dependencies of '{o.goal.drv_path}' failed to build" for o in blocked]
        return BuildsFailed(
            tuple(str(o.goal.drv_path) for o in failures),
            f"{len(failures)} build(s) failed, {len(blocked)} not attempted:\n" + "\n".join(lines),
        )


def run_plan(
    plan: BuildPlan,
    *,
    build: Work,
    substitute: Work | None = None,
    jobs: int = 1,
    keep_going: bool = False,
    progress: Progress | None = None,
    on_finish: OnFinish | None = None,
) -> Report:
    """Do every goal of `plan` with work to do; never raises for a failed goal (see `Report.error`).

    `progress` gets a `build` event after each change (goals done of all with work, what is running);
    `on_finish` each goal's outcome as it ends.
    """
    return _Run(plan, build, substitute, max(1, jobs), keep_going, progress, on_finish).run()


class _Run:
    def __init__(
        self,
        plan: BuildPlan,
        build: Work,
        substitute: Work | None,
        jobs: int,
        keep_going: bool,
        progress: Progress | None,
        on_finish: OnFinish | None,
    ) -> None:
        self.plan = plan
        self.work = {Action.BUILD: build, Action.SUBSTITUTE: substitute}
        self.jobs = jobs
        self.keep_going = keep_going
        self.progress = progress
        self.on_finish = on_finish
        self.cancel = threading.Event()
        self.outcomes: dict[StorePath, Outcome] = {
            p: Outcome(g, Status.VALID) for p, g in plan.goals.items() if g.action is Action.VALID
        }
        self.waiting = {p: set(plan.goals[p].deps) for p in plan.order}
        self.dependents = plan.dependents()
        self.running: set[StorePath] = set()
        self.rank = _critical_path_first(plan.order, self.dependents)

    def run(self) -> Report:
        ready = [self.rank[p] for p in self.plan.order if not self.waiting[p]]
        heapq.heapify(ready)
        pool = _Pool(self.jobs, self._do)
        try:
            while ready or self.running:
                while ready and len(self.running) < self.jobs and not self.stopping:
                    path = heapq.heappop(ready)[2]
                    pool.submit(path)
                    self.running.add(path)
                    self._report(f"started {path.name}", path)
                if not self.running:
                    break
                for path in self._finish(*pool.next_done()):
                    heapq.heappush(ready, self.rank[path])
        except BaseException:
            # Ctrl-C or SIGTERM: closing the pool waits for its threads, so stop their builds first
            # (each kills its sandbox), or an interrupted run would wait for a gcc build.
            self.cancel.set()
            raise
        finally:
            pool.close()
        for path in self.plan.order:
            self.outcomes.setdefault(path, Outcome(self.plan.goals[path], Status.CANCELLED))
        return Report(dict(self.outcomes))

    @property
    def stopping(self) -> bool:
        return self.cancel.is_set()

    def _do(self, path: StorePath) -> BuildResult | None:
        goal = self.plan.goals[path]
        work = self.work[goal.action]
        if work is None:
            raise BuildError(str(path), "it should be substituted, but no substituter is configured")
        return work(goal, self.cancel)

    def _finish(
        self, path: StorePath, result: BuildResult | None, error: BaseException | None
    ) -> list[StorePath]:
        self.running.discard(path)
        goal = self.plan.goals[path]
        if error is None:
            status = Status.BUILT if goal.action is Action.BUILD else Status.SUBSTITUTED
            self.outcomes[path] = Outcome(goal, status, result=result)
            self._report(f"{status.value} {path.name}", path, self.outcomes[path])
            return self._unblock(path)
        if not isinstance(error, StorekitError):
            raise error
        cancelled = self.stopping and not self.keep_going
        self.outcomes[path] = Outcome(goal, Status.CANCELLED if cancelled else Status.FAILED, error)
        self._fail_dependents(path)
        if not self.keep_going:
            self.cancel.set()
        self._report(f"failed {path.name}", path, self.outcomes[path])
        return []

    def _unblock(self, path: StorePath) -> list[StorePath]:
        ready = []
        for user in sorted(self.dependents[path]):
            self.waiting[user].discard(path)
            if not self.waiting[user] and user not in self.outcomes:
                ready.append(user)
        return ready

    def _fail_dependents(self, path: StorePath) -> None:
        todo = list(self.dependents[path])
        while todo:
            user = todo.pop()
            if user in self.outcomes:
                continue
            self.outcomes[user] = Outcome(self.plan.goals[user], Status.DEPENDENCY_FAILED)
            todo.extend(self.dependents[user])

    def _report(self, message: str, path: StorePath, finished: Outcome | None = None) -> None:
        if finished is not None and self.on_finish is not None:
            self.on_finish(finished)
        if self.progress is None:
            return
        done = sum(1 for p in self.plan.order if p in self.outcomes)
        failed = sum(1 for o in self.outcomes.values() if o.status is Status.FAILED)
        running = tuple(sorted(p.name.removesuffix(".drv") for p in self.running))
        total = len(self.plan.order)
        self.progress(ProgressEvent("build", done, total, "builds", str(path), "", message, running, failed))


def _critical_path_first(
    order: tuple[StorePath, ...], dependents: Mapping[StorePath, set[StorePath]]
) -> dict[StorePath, tuple[int, int, StorePath]]:
    """Each goal's place in the ready queue: the longest chain of goals waiting on it first (negated,
    for a min-heap), then its place in `order`. One pass over `order` backwards (users come after
    what they use), so a plan of any size costs its edges once."""
    height: dict[StorePath, int] = {}
    for path in reversed(order):
        height[path] = max((height[user] + 1 for user in dependents[path]), default=0)
    return {path: (-height[path], i, path) for i, path in enumerate(order)}


class _Pool:
    """Up to `size` threads doing `work(path)` for submitted paths; `next_done` waits for one to end.

    What `ThreadPoolExecutor` and `wait(FIRST_COMPLETED)` did here, without `concurrent.futures`,
    whose import (it brings `logging`) was a few ms of every `storekit build`'s start-up. A work's
    exception, `BaseException`s included, is handed to `next_done`'s caller as the executor did.
    """

    def __init__(self, size: int, work: Callable[[StorePath], BuildResult | None]) -> None:
        self.size = size
        self.work = work
        self.todo: queue.SimpleQueue[StorePath | None] = queue.SimpleQueue()
        self.done: queue.SimpleQueue[tuple[StorePath, BuildResult | None, BaseException | None]]
        self.done = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def submit(self, path: StorePath) -> None:
        if len(self.threads) < self.size:
            thread = threading.Thread(target=self._serve, name=f"storekit-build_{len(self.threads)}")
            thread.start()
            self.threads.append(thread)
        self.todo.put(path)

    def next_done(self) -> tuple[StorePath, BuildResult | None, BaseException | None]:
        return self.done.get()

    def close(self) -> None:
        """Let every thread finish what it is doing, then end it."""
        for _ in self.threads:
            self.todo.put(None)
        for thread in self.threads:
            thread.join()

    def _serve(self) -> None:
        while (path := self.todo.get()) is not None:
            try:
                self.done.put((path, self.work(path), None))
            except BaseException as e:  # handed to the scheduler, as a future hands it on
                self.done.put((path, None, e))
