"""The bootstrap workflow: plan a profile against a store, report its status, build it stage by stage.

The store is the whole state. A package is built when its output is valid; re-running after a failure
or an interrupt plans again and builds only what is missing, so a run resumes at the failure, and a
changed script, version or stage variable gives new derivations for exactly the packages that depend
on it. Building goes through storekit's build engine (`storekit.realise.driver.build`) one stage at a
time, each package with its stage's sandbox paths (`/bin/sh`) and its own; the seed and the sources
are realised first, since their builders (`builtin:…`) are storekit's, not the sandbox's.

This module orchestrates; the jobs it hands out live apart: `status` (what `bootstrap status` reports),
`files` (per-package logs and timings beside the store's logs), `drvs` (writing the `.drv` files),
`sources` (fetching), `stagebuild` (one run of the build engine per stage). Everything a user sees
comes through the `progress` callback (`ProgressEvent`s), the package logs and the timings.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from storekit.bootstrap import stages
from storekit.bootstrap.drvs import write_derivations
from storekit.bootstrap.files import BootstrapFiles
from storekit.bootstrap.model import SEED, LoadedProfile
from storekit.bootstrap.plan import Plan, make_plan
from storekit.bootstrap.seed import SeedManifest, add_seed, scan_host
from storekit.bootstrap.sources import realise_source
from storekit.bootstrap.stagebuild import StageRun, Target
from storekit.bootstrap.status import PackageState, StatusReader
from storekit.progress import Progress, ProgressEvent
from storekit.realise.driver import Sources
from storekit.realise.runner import BuildOptions
from storekit.store.local import LocalStore


@dataclass(frozen=True, slots=True)
class BuildSummary:
    built: dict[str, float] = field(default_factory=dict)
    """Package id -> seconds, for what this run built."""
    valid: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)
    """Package id -> error message."""
    blocked: tuple[str, ...] = ()
    """Not attempted: they depend on a failure (or the run stopped at one)."""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked


class Bootstrap:
    """A profile bound to a local store; the seed's manifest is read from the host once, when needed."""

    def __init__(
        self,
        loaded: LoadedProfile,
        store: LocalStore,
        *,
        manifest: SeedManifest | None = None,
        sources: Sources | None = None,
    ) -> None:
        self.loaded = loaded
        self.profile = loaded.profile
        self.store = store
        self.substituters = sources
        self._manifest = manifest
        self._plan: Plan | None = None

    @property
    def manifest(self) -> SeedManifest:
        if self._manifest is None:
            self._manifest = scan_host(self.profile.seed)
        return self._manifest

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            self._plan = make_plan(self.loaded, self.store.store_dir, self.manifest.digest)
        return self._plan

    @property
    def files(self) -> BootstrapFiles:
        return BootstrapFiles(self.store.spec.log_dir, self.profile.name)

    def status(self) -> list[tuple[str, list[PackageState]]]:
        """Stages in build order (the seed first), each package with its state in the store."""
        reader = StatusReader(self.store, self.files, self.substituters)
        return reader.states(self.plan, self.manifest.digest[:12])

    def package_log(self, pid: str) -> str:
        return self.files.package_log(pid)

    # --- building ------------------------------------------------------------------------------------

    def ensure_seed(self, progress: Progress | None = None) -> bool:
        """Make stage 0 if it is not valid yet; False when it already was."""
        plan = self.plan
        if self.store.is_valid_path(plan.seed.out):
            return False
        self.write_derivations([])
        emit = progress or (lambda e: None)
        message = f"copying {self.manifest.size} host files into {plan.seed.out}"
        emit(ProgressEvent("seed", 0, 1, "packages", item=str(plan.seed.out), message=message, phase="start"))
        started = time.monotonic()
        report = add_seed(self.store, plan.seed.out, plan.seed.drv_path, self.manifest, self.profile.seed)
        self.files.write_timing(plan.seed.drv_path, SEED, time.monotonic() - started)
        message = (
            f"seed made: {report.files} files, "
            f"{report.elf_patched} ELF files patched, {report.scripts_patched} scripts"
        )
        emit(ProgressEvent("seed", 1, 1, "packages", item=str(plan.seed.out), message=message, phase="done"))
        return True

    def write_derivations(self, ids: Collection[str]) -> None:
        """Add the builder, the scripts and the `.drv` files of `ids` (and what they need) to the store."""
        write_derivations(self.store, self.plan, ids)

    def realise_sources(
        self, ids: Collection[str], mirror: str | None, progress: Progress | None = None
    ) -> int:
        """Make the sources of `ids` valid from `mirror`; returns how many were added."""
        added = 0
        for pid in ids:
            for source, planned in self.plan.packages[pid].sources:
                if realise_source(self.store, planned, source, mirror):
                    added += 1
                    if progress is not None:
                        item = str(planned.out)
                        progress(
                            ProgressEvent("sources", added, unit="paths", item=item, message=f"added {item}")
                        )
        return added

    def build(
        self,
        *,
        mirror: str | None = None,
        until: Sequence[str] = (),
        jobs: int = 1,
        cores: int = 1,
        keep_going: bool = False,
        timeout: float | None = None,
        keep_failed: bool = False,
        progress: Progress | None = None,
        options: BuildOptions | None = None,
    ) -> BuildSummary:
        """Build the profile (or only `until`: stages, packages, rootfs trees, with what they need).

        Stage by stage; each system tree (`[rootfs]`) is built as soon as its stage is, not after
        the whole profile: the system of an earlier chapter can be entered while later chapters build.
        A plain build leaves out the optional packages (long test suites); `until` names them. A tree
        named in `until` needs only the packages it composes, not the rest of its stage (test suites).
        """
        emit = progress or (lambda e: None)
        trees = {tree.package.id: tree for tree in self.plan.rootfs}
        if until:
            trees = {t: trees[t] for t in until if t in trees}
        wanted = self.wanted(until)
        self.ensure_seed(emit)
        self.write_derivations(wanted)
        self.realise_sources(wanted, mirror, emit)
        base = options or BuildOptions(cores=cores, timeout=timeout, keep_failed=keep_failed)
        run = StageRun(self._target(), base, jobs, keep_going, emit)
        for stage, pps in self.plan.stages:
            todo = [pp for pp in pps if pp.package.id in wanted]
            if todo:
                run.stage(stage, todo)
            if run.failed and not keep_going:
                break
            for tree in trees.values():
                if tree.package.stage != stage:
                    continue
                have = set(run.built) | set(run.valid)
                if all(dep in have or self._valid(dep) for dep in tree.package.deps):
                    self.write_derivations([tree.package.id])
                    run.stage(stage, [tree])
        blocked = sorted(wanted - set(run.built) - set(run.valid) - set(run.failed))
        done = {*run.built, *run.valid, *run.failed}
        blocked += [tid for tid in trees if tid not in done]
        return BuildSummary(dict(run.built), tuple(run.valid), dict(run.failed), tuple(blocked))

    def wanted(self, until: Sequence[str] = ()) -> set[str]:
        """The package ids `until` needs: stages, packages, and trees, each standing for what it
        composes; with no target, every package but the optional ones (what a plain build builds)."""
        if not until:
            return stages.default(self.profile)
        composes = {tree.package.id: tree.package.deps for tree in self.plan.rootfs}
        return stages.until(self.profile, *(dep for t in until for dep in composes.get(t, (t,))))

    def _valid(self, package_id: str) -> bool:
        return self.store.is_valid_path(self.plan.packages[package_id].planned.out)

    def build_verify(
        self,
        *,
        jobs: int = 1,
        cores: int = 1,
        progress: Progress | None = None,
        options: BuildOptions | None = None,
    ) -> BuildSummary:
        """Build the `[verify]` derivation (the sanity checks run in the sandbox)."""
        verify = self.plan.verify
        if verify is None:
            return BuildSummary()
        self.write_derivations([verify.package.id])
        run = StageRun(
            self._target(), options or BuildOptions(cores=cores), jobs, False, progress or (lambda e: None)
        )
        run.stage(verify.package.stage, [verify])
        return BuildSummary(dict(run.built), tuple(run.valid), dict(run.failed))

    def _target(self) -> Target:
        return Target(self.store, self.plan, self.files, self.substituters)
