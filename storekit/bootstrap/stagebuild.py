"""One `build` of a profile: storekit's build engine once per stage, logs and timings kept per package.

A stage is one call to `storekit.realise.driver.build`, because its sandbox paths (`/bin/sh`) are its own.
Packages downstream of an earlier failure are not handed to the engine at all (with `--keep-going`
they are reported as blocked rather than retried), and every build's output is copied, as it comes,
to the package's own plain-text log.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import IO

from storekit.bootstrap import stages
from storekit.bootstrap.files import BootstrapFiles
from storekit.bootstrap.model import Package
from storekit.bootstrap.plan import PackagePlan, Plan
from storekit.realise.driver import Sources, build
from storekit.realise.runner import BuildOptions
from storekit.realise.sandbox import SandboxPath
from storekit.realise.scheduler import Outcome, Progress, Status
from storekit.store.local import LocalStore
from storekit.storepath import StorePath


@dataclass(frozen=True, slots=True)
class Event:
    """Progress for the CLI: `kind` is seed, sources, stage-start, progress, stage-done or message."""

    kind: str
    stage: str = ""
    done: int = 0
    total: int = 0
    running: tuple[str, ...] = ()
    failed: int = 0
    message: str = ""


ProgressCallback = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class Target:
    """What a run builds into: the store (with its substituters), the plan, and where logs go."""

    store: LocalStore
    plan: Plan
    files: BootstrapFiles
    substituters: Sources | None = None


class StageRun:
    """One `build` call: the engine once per stage, logs and timings recorded, failures carried over."""

    def __init__(
        self, target: Target, options: BuildOptions, jobs: int, keep_going: bool, emit: ProgressCallback
    ) -> None:
        self.target, self.options, self.jobs, self.keep_going, self.emit = (
            target,
            options,
            jobs,
            keep_going,
            emit,
        )
        self.built: dict[str, float] = {}
        self.valid: list[str] = []
        self.failed: dict[str, str] = {}
        self._logs: dict[StorePath, IO[bytes]] = {}
        self._lock = threading.Lock()

    def stage(self, stage: str, todo: list[PackagePlan]) -> None:
        profile = self.target.plan.profile
        blocked = stages.downstream(profile, self.failed) if self.failed else set()
        by_drv = {pp.planned.drv_path: pp for pp in todo if pp.package.id not in blocked}
        if not by_drv:
            return
        options = _with_sandbox_paths(self.options, sandbox_paths(self.target.store, todo[0]))
        self.emit(Event("stage-start", stage, total=len(by_drv)))

        def progress(p: Progress) -> None:
            if p.finished is not None and p.finished.status is Status.BUILT:
                pp = by_drv.get(p.finished.goal.drv_path)
                if pp is not None:  # its timing now, not at the end of the stage (which may not come)
                    self._record(pp.package, pp.planned.drv_path, p.finished)
            self.emit(Event("progress", stage, p.done, p.total, p.running, p.failed, p.event))

        try:
            _, report = build(
                self.target.store,
                [(d, None) for d in by_drv],
                options,
                jobs=self.jobs,
                keep_going=self.keep_going,
                sources=self.target.substituters,
                progress=progress,
                on_log=self._log,
            )
        finally:
            self._close_logs()
        for drv_path, pp in by_drv.items():
            outcome = report.outcomes.get(drv_path)
            self._record(pp.package, drv_path, outcome)
        self.emit(Event("stage-done", stage, len(by_drv), len(by_drv), failed=len(self.failed)))

    def _record(self, pkg: Package, drv_path: StorePath, outcome: Outcome | None) -> None:
        status = outcome.status if outcome is not None else None
        if outcome is not None and status is Status.BUILT:
            if pkg.id in self.built:
                return  # recorded as it finished (see `stage`'s progress)
            seconds = outcome.result.seconds if outcome.result is not None else 0.0
            self.built[pkg.id] = seconds
            self.target.files.write_timing(drv_path, pkg.id, seconds)
        elif status in (Status.VALID, Status.SUBSTITUTED):
            self.valid.append(pkg.id)
        elif outcome is not None and status is Status.FAILED:
            self.failed[pkg.id] = str(outcome.error or "failed")

    def _log(self, drv_path: StorePath, data: bytes) -> None:
        with self._lock:
            f = self._logs.get(drv_path)
            if f is None:
                pid = drv_path.name.removesuffix(".drv")
                for pp in self.target.plan.packages.values():
                    if pp.planned.drv_path == drv_path:
                        pid = pp.package.id
                path = self.target.files.package_log(pid)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                # unbuffered: `tail -f` on a package's log shows where an hour-long build is
                f = self._logs[drv_path] = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in _close_logs
            f.write(data)

    def _close_logs(self) -> None:
        with self._lock:
            for f in self._logs.values():
                f.close()
            self._logs.clear()


def _with_sandbox_paths(options: BuildOptions, paths: tuple[SandboxPath, ...]) -> BuildOptions:
    return replace(options, sandbox_paths=(*options.sandbox_paths, *paths))


def sandbox_paths(store: LocalStore, pp: PackagePlan) -> tuple[SandboxPath, ...]:
    """The stage's sandbox paths with store paths mapped to where their files are."""
    found = []
    for item in pp.planned.drv.env.get("sandboxPaths", "").split():
        target, _, source = item.partition("=")
        store_dir = store.store_dir.path + "/"
        if source.startswith(store_dir):
            source = os.path.join(store.real_dir, source[len(store_dir) :])
        found.append(SandboxPath(target, source))
    return tuple(found)
