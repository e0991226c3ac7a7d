"""`storekit bootstrap check`: rebuild a profile's packages and say which rebuild bit for bit.

Each built package is built once more in its stage's sandbox (`storekit.realise.check`, as
`nix-build --check` does) and its NAR hash compared with the store's; a difference names the files.
A package that is not built yet is skipped, not built: checking is about what the store holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storekit.bootstrap.driver import Bootstrap
from storekit.bootstrap.plan import PackagePlan
from storekit.bootstrap.stagebuild import sandbox_paths
from storekit.errors import ConfigError
from storekit.realise.check import CheckResult, check_derivation
from storekit.realise.runner import BuildOptions


@dataclass(frozen=True, slots=True)
class PackageCheck:
    id: str
    result: CheckResult | None
    """None: not built, so not checked."""


def check_packages(
    boot: Bootstrap,
    ids: Sequence[str] = (),
    *,
    cores: int = 1,
    options: BuildOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[PackageCheck]:
    """Rebuild `ids` (default: every package, then the rootfs trees) and compare; in build order."""
    plans: dict[str, PackagePlan] = dict(boot.plan.packages)
    plans.update((tree.package.id, tree) for tree in boot.plan.rootfs)
    for pid in ids:
        if pid not in plans:
            raise ConfigError(
                boot.profile.file, f"packages.{pid}", f"'{pid}' is not a package of this profile"
            )
    base = options or BuildOptions(cores=cores)
    found = []
    for pid, pp in plans.items():
        if ids and pid not in ids:
            continue
        if not boot.store.is_valid_path(pp.planned.out):
            found.append(PackageCheck(pid, None))
            continue
        if progress is not None:
            progress(pid)
        opts = base.replace(sandbox_paths=(*base.sandbox_paths, *sandbox_paths(boot.store, pp)))
        boot.write_derivations([pid])
        (result,) = check_derivation(boot.store, pp.planned.drv_path, opts)
        found.append(PackageCheck(pid, result))
    return found
