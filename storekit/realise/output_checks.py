"""What a derivation may demand of its outputs: Nix 2.8's `LocalDerivationGoal::checkOutputs`.

Without structured attributes, four env attributes apply to every output: `allowedReferences`,
`allowedRequisites`, `disallowedReferences`, `disallowedRequisites` (space-separated store paths or
output names of the derivation). An output's requisites here leave out the output itself.

With structured attributes, `outputChecks.<output>` holds them per output, as lists, plus `maxSize`
(the output's NAR size) and `maxClosureSize` (the NAR sizes of its closure, itself included); its
requisites include the output itself, so `allowedRequisites` must name it. The checks run in Nix's
order (sizes, then the four lists), for each output in name order; the first violation fails the
build, and nothing is registered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from storekit.errors import BuildError
from storekit.frozen import Frozen
from storekit.realise import structured_attrs
from storekit.realise.plan import Goal
from storekit.store.base import Store, ValidPathInfo
from storekit.storepath import StorePath

TYPE_CHECKING = False  # no `typing` at run time: a plain build imports this module (start-up)
if TYPE_CHECKING:
    from typing import Any

RULES = ("allowedReferences", "allowedRequisites", "disallowedReferences", "disallowedRequisites")


_set = object.__setattr__


class Checks(Frozen):
    """Nix's `Checks` for one output."""

    __slots__ = ("ignore_self_refs", "max_closure_size", "max_size", "rules")
    __match_args__ = ("rules", "max_size", "max_closure_size", "ignore_self_refs")
    rules: Mapping[str, list[str]]
    """Present rules of `RULES`, each a list of store paths or output names."""
    max_size: int | None
    max_closure_size: int | None
    ignore_self_refs: bool

    def __init__(
        self,
        rules: Mapping[str, list[str]],
        max_size: int | None = None,
        max_closure_size: int | None = None,
        ignore_self_refs: bool = False,
    ) -> None:
        _set(self, "rules", rules)
        _set(self, "max_size", max_size)
        _set(self, "max_closure_size", max_closure_size)
        _set(self, "ignore_self_refs", ignore_self_refs)


def check_outputs(store: Store, goal: Goal, infos: Mapping[str, ValidPathInfo]) -> None:
    """`BuildError` for the first output that breaks a rule of its derivation."""
    label = str(goal.drv_path)
    per_output = _structured_checks(goal, label) if structured_attrs.is_structured(goal.drv) else None
    for name in sorted(infos):
        if per_output is None:
            env = goal.drv.env
            checks = Checks({r: env[r].split() for r in RULES if r in env}, ignore_self_refs=True)
        elif name in per_output:
            checks = per_output[name]
        else:
            continue
        _apply(store, goal, infos, infos[name], checks)


def _structured_checks(goal: Goal, label: str) -> dict[str, Checks]:
    attrs = structured_attrs.parse(goal.drv, label)
    spec = attrs.get("outputChecks")
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise BuildError(label, "attribute 'outputChecks' must be an attribute set")
    found = {}
    for output, value in spec.items():
        if not isinstance(value, dict):
            raise BuildError(label, f"attribute 'outputChecks.{output}' must be an attribute set")
        rules = {r: _strings(value[r], f"outputChecks.{output}.{r}", label) for r in RULES if r in value}
        found[output] = Checks(
            rules,
            _size(value, "maxSize", output, label),
            _size(value, "maxClosureSize", output, label),
        )
    return found


def _strings(value: Any, where: str, label: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BuildError(label, f"attribute '{where}' must be a list of strings")
    return value


def _size(value: Mapping[str, Any], key: str, output: str, label: str) -> int | None:
    if key not in value:
        return None
    size = value[key]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise BuildError(label, f"attribute 'outputChecks.{output}.{key}' must be a number of bytes")
    return size


def _apply(
    store: Store, goal: Goal, infos: Mapping[str, ValidPathInfo], info: ValidPathInfo, checks: Checks
) -> None:
    label = str(goal.drv_path)
    if checks.max_size is not None and info.nar_size > checks.max_size:
        size, limit = info.nar_size, checks.max_size
        raise BuildError(label, f"path '{info.path}' is too large at {size} bytes; limit is {limit} bytes")
    if checks.max_closure_size is not None:
        size = sum(_info(store, infos, p).nar_size for p in _closure(store, infos, info.path))
        if size > checks.max_closure_size:
            raise BuildError(
                label,
                f"closure of path '{info.path}' is too large at {size} bytes; limit is "
                f"{checks.max_closure_size} bytes",
            )
    for rule in RULES:
        if rule not in checks.rules:
            continue
        spec = _rule_paths(goal, checks.rules[rule])
        recursive = rule.endswith("Requisites")
        used = _closure(store, infos, info.path) if recursive else set(info.references)
        if recursive and checks.ignore_self_refs:
            used.discard(info.path)
        allowed = rule.startswith("allowed")
        bad = sorted(str(p) for p in used if (p in spec) != allowed)
        if bad:
            raise BuildError(
                label,
                f"output '{info.path}' is not allowed to refer to the following paths ({rule}):"
                + "".join(f"\n  {p}" for p in bad),
            )


def _rule_paths(goal: Goal, items: Iterable[str]) -> set[StorePath]:
    """Nix's reference specifiers: store paths or output names of this derivation."""
    store_dir = goal.drv_path.store_dir
    found = set()
    for item in items:
        if store_dir.is_store_path(item):
            found.add(store_dir.parse_path(item))
        elif item in goal.outputs:
            found.add(goal.outputs[item])
        else:
            raise BuildError(str(goal.drv_path), f"it contains an illegal reference specifier '{item}'")
    return found


def _info(store: Store, infos: Mapping[str, ValidPathInfo], path: StorePath) -> ValidPathInfo:
    for info in infos.values():
        if info.path == path:
            return info
    return store.query_path_info(path)


def _closure(store: Store, infos: Mapping[str, ValidPathInfo], start: StorePath) -> set[StorePath]:
    """The closure of `start`, where the derivation's own outputs are not valid yet."""
    seen: set[StorePath] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_info(store, infos, path).references)
    return seen
