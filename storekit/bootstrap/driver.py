"""The bootstrap workflow: plan a profile against a store, report its status, build it stage by stage.

The store is the whole state. A package is built when its output is valid; re-running after a failure
or an interrupt plans again and builds only what is missing, so a run resumes at the failure, and a
changed script, version or stage variable gives new derivations for exactly the packages that depend
on it. Building goes through storekit's build engine (`storekit.build.driver.build`) one stage at a
time, because a stage's sandbox paths (`/bin/sh`) are its own; the seed and the sources are realised
first, since their builders (`builtin:…`) are storekit's, not the sandbox's.

Everything a user sees comes through the `progress` callback (`Event`), per-package logs (a plain copy
of the build log in `<log dir>/bootstrap/<profile>/<id>.log`) and the timings kept beside them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection
from dataclasses import dataclass, field

from storekit.bootstrap import stages
from storekit.bootstrap.model import SEED, LoadedProfile
from storekit.bootstrap.plan import PackagePlan, Plan, make_plan
from storekit.bootstrap.seed import SeedManifest, add_seed, scan_host
from storekit.bootstrap.sources import realise_source
from storekit.bootstrap.stagebuild import Event, ProgressCallback, StageRun
from storekit.build.driver import Sources
from storekit.build.runner import BuildOptions
from storekit.build.sandbox import SandboxPath
from storekit.derivation.aterm import print_aterm
from storekit.errors import StorekitError
from storekit.store.local import LocalStore
from storekit.storepath import StorePath


@dataclass(frozen=True, slots=True)
class PackageState:
    id: str
    name: str
    version: str
    stage: str
    status: str  # "built" | "to-build" | "substitutable"
    drv: str
    outputs: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    """(url, sha256) of each source."""
    seconds: float | None = None
    log: str | None = None
    weak_pins: tuple[str, ...] = ()
    """Sources fixed by the book's md5 alone (no sha256 yet): `pin --mirror DIR` upgrades them."""

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.id,
            "version": self.version,
            "status": self.status,
            "drv": self.drv,
            "outputs": list(self.outputs),
            "sources": [{"url": u, "sha256": h} for u, h in self.sources],
            "seconds": self.seconds,
            "weak_pins": list(self.weak_pins),
        }


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

    # --- status ------------------------------------------------------------------------------------

    def status(self) -> list[tuple[str, list[PackageState]]]:
        """Stages in build order (the seed first), each package with its state in the store."""
        plan = self.plan
        seed = PackageState(
            SEED,
            SEED,
            self.manifest.digest[:12],
            SEED,
            self._status(plan.seed.out),
            str(plan.seed.drv_path),
            (str(plan.seed.out),),
            (),
            self._read_timing(plan.seed.drv_path),
        )
        result = [(SEED, [seed])]
        for stage, pps in plan.stages:
            result.append((stage, [self._state(pp) for pp in pps]))
        if plan.rootfs is not None:
            result.append((plan.rootfs.package.id, [self._state(plan.rootfs)]))
        return result

    def _state(self, pp: PackagePlan) -> PackageState:
        pkg = pp.package
        timing = self._read_timing(pp.planned.drv_path)
        return PackageState(
            pkg.id,
            pkg.name,
            pkg.version,
            pkg.stage,
            self._status(pp.planned.out),
            str(pp.planned.drv_path),
            (str(pp.planned.out),),
            tuple((s.urls[0], s.sha256 or "") for s, _ in pp.sources),
            timing,
            self.package_log(pkg.id) if os.path.exists(self.package_log(pkg.id)) else None,
            tuple(s.file for s, _ in pp.sources if s.sha256 is None),
        )

    def _status(self, out: StorePath) -> str:
        if self.store.is_valid_path(out):
            return "built"
        if self.substituters is not None and self.substituters.trusted_info(out) is not None:
            return "substitutable"
        return "to-build"

    # --- files beside the store's logs ---------------------------------------------------------------

    @property
    def _bootstrap_dir(self) -> str:
        return os.path.join(self.store.spec.log_dir, "bootstrap")

    def package_log(self, pid: str) -> str:
        return os.path.join(self._bootstrap_dir, self.profile.name, f"{pid}.log")

    def _timing_file(self, drv: StorePath) -> str:
        return os.path.join(self._bootstrap_dir, "timings", drv.base_name + ".json")

    def _read_timing(self, drv: StorePath) -> float | None:
        try:
            with open(self._timing_file(drv)) as f:
                return float(json.load(f)["seconds"])
        except (OSError, ValueError, KeyError):
            return None

    def write_timing(self, drv: StorePath, pid: str, seconds: float) -> None:
        path = self._timing_file(drv)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"package": pid, "seconds": round(seconds, 1), "finished": int(time.time())}, f)

    # --- building ------------------------------------------------------------------------------------

    def ensure_seed(self, progress: ProgressCallback | None = None) -> bool:
        """Make stage 0 if it is not valid yet; False when it already was."""
        plan = self.plan
        if self.store.is_valid_path(plan.seed.out):
            return False
        self.write_derivations([])
        emit = progress or (lambda e: None)
        emit(Event("seed", SEED, message=f"copying {self.manifest.size} host files into {plan.seed.out}"))
        started = time.monotonic()
        report = add_seed(self.store, plan.seed.out, plan.seed.drv_path, self.manifest, self.profile.seed)
        self.write_timing(plan.seed.drv_path, SEED, time.monotonic() - started)
        emit(
            Event(
                "seed",
                SEED,
                done=1,
                total=1,
                message=f"seed made: {report.files} files, "
                f"{report.elf_patched} ELF files patched, {report.scripts_patched} scripts",
            )
        )
        return True

    def write_derivations(self, ids: Collection[str]) -> None:
        """Add the builder, the scripts and the `.drv` files of `ids` (and what they need) to the store."""
        plan = self.plan
        for path, data in plan.texts.items():
            if not self.store.is_valid_path(path):
                self.store.add_text(path.name, data)
        wanted = [plan.seed.drv_path]
        packages = plan.packages
        extra = {pp.package.id: pp for pp in (plan.verify, plan.rootfs) if pp is not None}
        for pid in ids:
            pp = packages.get(pid) or extra[pid]
            wanted += [p.drv_path for _, p in pp.sources]
            wanted.append(pp.planned.drv_path)
        for drv_path in _in_input_order(plan, wanted):
            if self.store.is_valid_path(drv_path):
                continue
            drv = plan.derivations[str(drv_path)]
            refs = [plan.store_dir.parse_path(p) for p in (*drv.input_srcs, *drv.input_drvs)]
            made = self.store.add_text(
                drv_path.name, print_aterm(drv).encode("utf-8", "surrogateescape"), refs
            )
            if made != drv_path:
                raise StorekitError(f"internal error: {drv_path} was written as {made}")

    def realise_sources(
        self, ids: Collection[str], mirror: str | None, progress: ProgressCallback | None = None
    ) -> int:
        """Make the sources of `ids` valid from `mirror`; returns how many were added."""
        added = 0
        for pid in ids:
            for source, planned in self.plan.packages[pid].sources:
                if realise_source(self.store, planned, source, mirror):
                    added += 1
                    if progress is not None:
                        progress(Event("sources", message=f"added {planned.out}"))
        return added

    def build(
        self,
        *,
        mirror: str | None = None,
        until: str | None = None,
        jobs: int = 1,
        cores: int = 1,
        keep_going: bool = False,
        timeout: float | None = None,
        keep_failed: bool = False,
        progress: ProgressCallback | None = None,
        options: BuildOptions | None = None,
    ) -> BuildSummary:
        """Build the profile (or up to `until`, a stage or a package) into the store, stage by stage."""
        emit = progress or (lambda e: None)
        wanted = stages.until(self.profile, until) if until else set(self.profile.packages)
        self.ensure_seed(emit)
        self.write_derivations(wanted)
        self.realise_sources(wanted, mirror, emit)
        base = options or BuildOptions(cores=cores, timeout=timeout, keep_failed=keep_failed)
        run = StageRun(self, base, jobs, keep_going, emit)
        for stage, pps in self.plan.stages:
            todo = [pp for pp in pps if pp.package.id in wanted]
            if todo:
                run.stage(stage, todo)
            if run.failed and not keep_going:
                break
        blocked = sorted(wanted - set(run.built) - set(run.valid) - set(run.failed))
        rootfs = self.plan.rootfs
        if rootfs is not None and not until:
            if blocked or run.failed:
                blocked.append(rootfs.package.id)
            else:  # the system's tree, once everything it composes is there
                self.write_derivations([rootfs.package.id])
                run.stage(rootfs.package.stage, [rootfs])
        return BuildSummary(dict(run.built), tuple(run.valid), dict(run.failed), tuple(blocked))

    def build_verify(
        self,
        *,
        jobs: int = 1,
        cores: int = 1,
        progress: ProgressCallback | None = None,
        options: BuildOptions | None = None,
    ) -> BuildSummary:
        """Build the `[verify]` derivation (the sanity checks run in the sandbox)."""
        verify = self.plan.verify
        if verify is None:
            return BuildSummary()
        self.write_derivations([verify.package.id])
        run = StageRun(self, options or BuildOptions(cores=cores), jobs, False, progress or (lambda e: None))
        run.stage(verify.package.stage, [verify])
        return BuildSummary(dict(run.built), tuple(run.valid), dict(run.failed))

    def sandbox_paths(self, pp: PackagePlan) -> tuple[SandboxPath, ...]:
        """The stage's sandbox paths with store paths mapped to where their files are."""
        found = []
        for item in pp.planned.drv.env.get("sandboxPaths", "").split():
            target, _, source = item.partition("=")
            store_dir = self.store.store_dir.path + "/"
            if source.startswith(store_dir):
                source = os.path.join(self.store.real_dir, source[len(store_dir) :])
            found.append(SandboxPath(target, source))
        return tuple(found)


def _in_input_order(plan: Plan, roots: list[StorePath]) -> list[StorePath]:
    """`roots` and the `.drv` files they need, inputs first (the store wants references valid)."""
    done: dict[StorePath, None] = {}

    def visit(path: StorePath) -> None:
        if path in done:
            return
        for inp in plan.derivations[str(path)].input_drvs:
            visit(plan.store_dir.parse_path(inp))
        done[path] = None

    for root in roots:
        visit(root)
    return list(done)
