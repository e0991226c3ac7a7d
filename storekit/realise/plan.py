"""Which derivations to build, which outputs to substitute, in what order: the derivation graph as a value.

Like Nix's worker, planning is lazy: a derivation whose wanted outputs are all valid is not opened
further, so asking for something already built costs one validity check however big its closure.
A derivation that is not done is substituted when every missing output it must provide is
substitutable; otherwise it is built, which makes the outputs it uses from each input derivation
wanted in turn. A derivation can be reached again wanting more outputs (one user needs `out`, another
`dev`); it is then decided again, which only ever adds work, so the walk ends.

Pure: derivations, validity and substitutability come from caller-given functions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from enum import Enum

from storekit.derivation.model import Derivation
from storekit.errors import BuildError, DependencyCycle, StoreError
from storekit.frozen import Frozen
from storekit.graph import toposort
from storekit.realise.impure import refuse_impure
from storekit.storepath import StoreDir, StorePath

ReadDerivation = Callable[[StorePath], Derivation]
IsValid = Callable[[StorePath], bool]
Substitutable = Callable[[Collection[StorePath]], set[StorePath]]
"""Which of the given paths some substituter can provide (a batch query: `querySubstitutablePaths`)."""
Realised = Callable[[StorePath, Derivation], Mapping[str, StorePath]]
"""The known output paths of a content-addressed (or deferred) derivation: its realisations."""


_set = object.__setattr__


class Action(Enum):
    VALID = "valid"
    SUBSTITUTE = "substitute"
    BUILD = "build"


class Goal(Frozen):
    """One derivation in the plan and what to do about it."""

    __slots__ = ("action", "deps", "drv", "drv_path", "missing", "outputs", "wanted")
    __match_args__ = ("drv_path", "drv", "outputs", "wanted", "missing", "action", "deps")
    drv_path: StorePath
    drv: Derivation
    outputs: Mapping[str, StorePath]
    """Every output of the derivation and its path (a content-addressed one: those realised so far)."""
    wanted: frozenset[str]
    """The outputs that the roots or the derivations being built use."""
    missing: frozenset[str]
    """The wanted outputs that are not valid yet."""
    action: Action
    deps: tuple[StorePath, ...]
    """Input derivations that must be substituted or built first."""

    def __init__(
        self,
        drv_path: StorePath,
        drv: Derivation,
        outputs: Mapping[str, StorePath],
        wanted: frozenset[str],
        missing: frozenset[str],
        action: Action,
        deps: tuple[StorePath, ...] = (),
    ) -> None:
        _set(self, "drv_path", drv_path)
        _set(self, "drv", drv)
        _set(self, "outputs", outputs)
        _set(self, "wanted", wanted)
        _set(self, "missing", missing)
        _set(self, "action", action)
        _set(self, "deps", deps)

    @property
    def name(self) -> str:
        return self.drv_path.name.removesuffix(".drv")


class BuildPlan(Frozen):
    """Every derivation looked at; `order` lists the ones with work to do, inputs before their users."""

    __slots__ = ("goals", "order", "roots", "sources")
    __match_args__ = ("roots", "goals", "order", "sources")
    roots: tuple[StorePath, ...]
    goals: Mapping[StorePath, Goal]
    order: tuple[StorePath, ...]
    sources: frozenset[StorePath]
    """Input sources that are not valid but substitutable; fetched before anything is built."""

    def __init__(
        self,
        roots: tuple[StorePath, ...],
        goals: Mapping[StorePath, Goal],
        order: tuple[StorePath, ...],
        sources: frozenset[StorePath] = frozenset(),
    ) -> None:
        _set(self, "roots", roots)
        _set(self, "goals", goals)
        _set(self, "order", order)
        _set(self, "sources", sources)

    @property
    def todo(self) -> list[Goal]:
        return [self.goals[p] for p in self.order]

    def dependents(self) -> dict[StorePath, set[StorePath]]:
        """For each goal with work to do, the goals waiting for it."""
        found: dict[StorePath, set[StorePath]] = {p: set() for p in self.order}
        for p in self.order:
            for dep in self.goals[p].deps:
                found[dep].add(p)
        return found


def output_paths(drv_path: StorePath, drv: Derivation, store_dir: StoreDir) -> dict[str, StorePath]:
    """The output paths written in the `.drv`; content-addressed outputs have none before building."""
    paths = {}
    for name, out in drv.outputs.items():
        if not out.path:
            raise BuildError(
                str(drv_path),
                f"output '{name}' has no path before building (a content-addressed or deferred "
                "derivation): its path comes from a realisation, which this plan was not given",
            )
        paths[name] = store_dir.parse_path(out.path)
    return paths


def make_plan(
    roots: Iterable[tuple[StorePath, Collection[str] | None]],
    store_dir: StoreDir,
    read_drv: ReadDerivation,
    is_valid: IsValid,
    substitutable: Substitutable | None = None,
    realised: Realised | None = None,
) -> BuildPlan:
    """Plan the build of `roots`: (`.drv` path, wanted outputs or None for all of them).

    Without `realised`, a derivation whose output paths are unknown before building is refused.
    """
    planner = _Planner(store_dir, read_drv, is_valid, substitutable, realised)
    root_paths = []
    for drv_path, outputs in roots:
        root_paths.append(drv_path)
        planner.want(drv_path, outputs)
    planner.run()
    goals = planner.goals()
    order = _topological(goals)
    return BuildPlan(tuple(root_paths), goals, order, frozenset(planner.sources))


class _Planner:
    def __init__(
        self,
        store_dir: StoreDir,
        read_drv: ReadDerivation,
        is_valid: IsValid,
        subst: Substitutable | None,
        realised: Realised | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.read_drv = read_drv
        self.is_valid = is_valid
        self.subst = subst
        self.drvs: dict[StorePath, tuple[Derivation, dict[str, StorePath]]] = {}
        self.wanted: dict[StorePath, set[str]] = {}
        self.decided: dict[StorePath, tuple[Action, frozenset[str]]] = {}
        self.sources: set[StorePath] = set()
        self.todo: deque[StorePath] = deque()
        self.realised = realised

    def want(self, drv_path: StorePath, outputs: Collection[str] | None) -> None:
        if drv_path not in self.drvs:
            if not drv_path.is_derivation:
                raise BuildError(str(drv_path), "it is not a derivation (its name does not end in '.drv')")
            drv = self.read_drv(drv_path)
            refuse_impure(drv_path, drv)
            pathless = any(not o.path for o in drv.outputs.values())
            if pathless and self.realised is not None:
                paths = dict(self.realised(drv_path, drv))
            else:
                paths = output_paths(drv_path, drv, self.store_dir)
            self.drvs[drv_path] = (drv, paths)
        drv, paths = self.drvs[drv_path]
        names = set(drv.outputs) if outputs is None else set(outputs)
        unknown = names - set(drv.outputs)
        if unknown:
            raise BuildError(
                str(drv_path),
                f"it has no output(s) {', '.join(sorted(unknown))} (it has {', '.join(drv.outputs)})",
            )
        have = self.wanted.setdefault(drv_path, set())
        if not names <= have or drv_path not in self.decided:
            have |= names
            self.todo.append(drv_path)

    def run(self) -> None:
        while self.todo:
            self.decide(self.todo.popleft())

    def decide(self, drv_path: StorePath) -> None:
        drv, paths = self.drvs[drv_path]
        wanted = self.wanted[drv_path]
        missing = frozenset(o for o in wanted if o not in paths or not self.is_valid(paths[o]))
        missing_paths = {paths[o] for o in missing if o in paths}
        if not missing:
            action = Action.VALID
        elif (
            self.subst is not None
            and len(missing_paths) == len(missing)
            and self.subst(missing_paths) >= missing_paths
        ):
            action = Action.SUBSTITUTE
        else:
            action = Action.BUILD
        self.decided[drv_path] = (action, missing)
        if action is Action.BUILD:
            self.need_sources(drv_path, drv)
            for input_drv, outputs in drv.input_drvs.items():
                self.want(self.store_dir.parse_path(input_drv), outputs)

    def need_sources(self, drv_path: StorePath, drv: Derivation) -> None:
        missing = [p for p in map(self.store_dir.parse_path, drv.input_srcs) if not self.is_valid(p)]
        if not missing:
            return
        found = self.subst(missing) if self.subst is not None else set()
        lost = sorted(str(p) for p in missing if p not in found)
        if lost:
            raise StoreError(
                f"cannot build '{drv_path}': its input source(s) {', '.join(lost)} are not valid and no "
                "substituter has them; copy them into the store first"
            )
        self.sources.update(missing)

    def goals(self) -> dict[StorePath, Goal]:
        result = {}
        for drv_path, (action, missing) in self.decided.items():
            drv, paths = self.drvs[drv_path]
            deps: tuple[StorePath, ...] = ()
            if action is Action.BUILD:
                inputs = (self.store_dir.parse_path(p) for p in drv.input_drvs)
                deps = tuple(sorted(p for p in inputs if self.decided[p][0] is not Action.VALID))
            wanted = frozenset(self.wanted[drv_path])
            result[drv_path] = Goal(drv_path, drv, paths, wanted, missing, action, deps)
        return result


def _topological(goals: Mapping[StorePath, Goal]) -> tuple[StorePath, ...]:
    """Goals with work to do, each after its deps (ties broken by path, so the order is stable)."""
    roots = sorted(p for p, g in goals.items() if g.action is not Action.VALID)
    try:
        return tuple(toposort(roots, lambda path: goals[path].deps))
    except DependencyCycle as e:
        node, dep = e.cycle[-2], e.cycle[0]
        raise BuildError(str(node), f"its inputs form a cycle through '{dep}'") from e
