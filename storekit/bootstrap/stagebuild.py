"""One `build` of a profile: storekit's build engine once per stage, logs and timings kept per package.

A stage is one call to `storekit.realise.driver.build`, each of its packages with its own sandbox paths
(the stage's `/bin/sh`, and any the package adds for itself).
Packages downstream of an earlier failure are not handed to the engine at all (with `--keep-going`
they are reported as blocked rather than retried), and every build's output is copied, as it comes,
to the package's own plain-text log.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import IO

from storekit.bootstrap import stages
from storekit.bootstrap.files import BootstrapFiles
from storekit.bootstrap.model import Package
from storekit.bootstrap.plan import PackagePlan, Plan
from storekit.progress import Progress, ProgressEvent
from storekit.realise.driver import Sources, build
from storekit.realise.runner import BuildOptions
from storekit.realise.sandbox import SandboxPath
from storekit.realise.scheduler import Outcome, Status
from storekit.store.local import LocalStore
from storekit.storepath import StorePath


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
        self, target: Target, options: BuildOptions, jobs: int, keep_going: bool, emit: Progress
    ) -> None:
        self.target, self.options, self.jobs = target, options, jobs
        self.keep_going, self.emit = keep_going, emit
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
        store = self.target.store
        options = self.options.replace(
            sandbox_paths_of={d: sandbox_paths(store, pp) for d, pp in by_drv.items()}
        )
        self.emit(ProgressEvent("build", 0, len(by_drv), "packages", group=stage, phase="start"))

        def finished(outcome: Outcome) -> None:
            pp = by_drv.get(outcome.goal.drv_path)
            if pp is not None and outcome.status is Status.BUILT:
                # its timing now, not at the end of the stage (which may not come)
                self._record(pp.package, pp.planned.drv_path, outcome)

        def progress(event: ProgressEvent) -> None:
            self.emit(event.replace(unit="packages", group=stage))

        try:
            _, report = build(
                self.target.store,
                [(d, None) for d in by_drv],
                options,
                jobs=self.jobs,
                keep_going=self.keep_going,
                sources=self.target.substituters,
                progress=progress,
                on_finish=finished,
                on_log=self._log,
            )
        finally:
            self._close_logs()
        for drv_path, pp in by_drv.items():
            outcome = report.outcomes.get(drv_path)
            self._record(pp.package, drv_path, outcome)
        done = len(by_drv)
        self.emit(
            ProgressEvent("build", done, done, "packages", failed=len(self.failed), group=stage, phase="done")
        )

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
                # the attempt before stays as <id>.log.1: a retry (a rerun, or --keep-going's second
                # pass) would otherwise overwrite the one log that says why it failed
                if os.path.exists(path):
                    os.replace(path, path + ".1")
                # unbuffered: `tail -f` on a package's log shows where an hour-long build is
                f = self._logs[drv_path] = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in _close_logs
            f.write(data)

    def _close_logs(self) -> None:
        with self._lock:
            for f in self._logs.values():
                f.close()
            self._logs.clear()


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
