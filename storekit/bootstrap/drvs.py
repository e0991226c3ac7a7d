"""Writing a plan's `.drv` files (and the texts they use: the builder, the scripts) into the store.

The store wants references valid before a path that names them, so `.drv` files go in inputs first.
Planning computed every path already; a `.drv` the store names differently is a bug in the planner.
"""

from __future__ import annotations

from collections.abc import Collection

from storekit.bootstrap.plan import Plan
from storekit.derivation.aterm import print_aterm
from storekit.graph import toposort
from storekit.store.local import LocalStore
from storekit.storepath import StorePath


def write_derivations(store: LocalStore, plan: Plan, ids: Collection[str]) -> None:
    """Add the builder, the scripts and the `.drv` files of `ids` (and what they need) to the store."""
    for path, data in plan.texts.items():
        if not store.is_valid_path(path):
            store.add_text(path.name, data)
    wanted = [plan.seed.drv_path]
    packages = plan.packages
    extra = {pp.package.id: pp for pp in (plan.verify, *plan.rootfs) if pp is not None}
    for pid in ids:
        pp = packages.get(pid) or extra.get(pid)
        assert pp is not None, f"{pid} is not in the plan"
        wanted += [p.drv_path for _, p in pp.sources]
        wanted.append(pp.planned.drv_path)
    for drv_path in _in_input_order(plan, wanted):
        if store.is_valid_path(drv_path):
            continue
        drv = plan.derivations[str(drv_path)]
        refs = [plan.store_dir.parse_path(p) for p in (*drv.input_srcs, *drv.input_drvs)]
        made = store.add_text(drv_path.name, print_aterm(drv).encode("utf-8", "surrogateescape"), refs)
        assert made == drv_path, f"{drv_path} was written as {made}"


def _in_input_order(plan: Plan, roots: list[StorePath]) -> list[StorePath]:
    """`roots` and the `.drv` files they need, inputs first (the store wants references valid)."""

    def inputs(path: StorePath) -> list[StorePath]:
        return [plan.store_dir.parse_path(p) for p in plan.derivations[str(path)].input_drvs]

    return toposort(roots, inputs)
