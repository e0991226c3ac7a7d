"""What `storekit bootstrap status` reports: each package of a plan with its state in the store.

A package is `built` when its output is valid, `substitutable` when a trusted substituter has it,
else `to-build`; the seconds its last build took and its log come from `BootstrapFiles`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from storekit.bootstrap.files import BootstrapFiles
from storekit.bootstrap.model import SEED
from storekit.bootstrap.plan import PackagePlan, Plan
from storekit.realise.driver import Sources
from storekit.store.local import LocalStore
from storekit.storepath import StorePath

PackageStatus = Literal["built", "to-build", "substitutable"]


@dataclass(frozen=True, slots=True)
class PackageState:
    id: str
    name: str
    version: str
    stage: str
    status: PackageStatus
    drv: str
    outputs: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    """(url, sha256) of each source."""
    seconds: float | None = None
    log: str | None = None
    weak_pins: tuple[str, ...] = ()
    """Sources fixed by the book's md5 alone (no sha256 yet): `pin --mirror DIR` upgrades them."""
    optional: bool = False
    """Built only when named (`build --until ID`): a long test suite."""

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
            "optional": self.optional,
        }


@dataclass(frozen=True, slots=True)
class StatusReader:
    """Reads the state of a plan's packages from a store (and its substituters, when given)."""

    store: LocalStore
    files: BootstrapFiles
    substituters: Sources | None = None

    def states(self, plan: Plan, seed_version: str) -> list[tuple[str, list[PackageState]]]:
        """Stages in build order (the seed first), each package with its state in the store."""
        seed = PackageState(
            SEED,
            SEED,
            seed_version,
            SEED,
            self.status(plan.seed.out),
            str(plan.seed.drv_path),
            (str(plan.seed.out),),
            (),
            self.files.read_timing(plan.seed.drv_path),
        )
        result = [(SEED, [seed])]
        for stage, pps in plan.stages:
            result.append((stage, [self.state(pp) for pp in pps]))
        result += [(tree.package.id, [self.state(tree)]) for tree in plan.rootfs]
        return result

    def state(self, pp: PackagePlan) -> PackageState:
        pkg = pp.package
        log = self.files.package_log(pkg.id)
        return PackageState(
            pkg.id,
            pkg.name,
            pkg.version,
            pkg.stage,
            self.status(pp.planned.out),
            str(pp.planned.drv_path),
            (str(pp.planned.out),),
            tuple((s.urls[0], s.sha256 or "") for s, _ in pp.sources),
            self.files.read_timing(pp.planned.drv_path),
            log if os.path.exists(log) else None,
            tuple(s.file for s, _ in pp.sources if s.sha256 is None),
            pkg.optional,
        )

    def status(self, out: StorePath) -> PackageStatus:
        if self.store.is_valid_path(out):
            return "built"
        if self.substituters is not None and self.substituters.trusted_info(out) is not None:
            return "substitutable"
        return "to-build"
