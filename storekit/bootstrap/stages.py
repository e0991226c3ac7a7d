"""How stages see each other: the package graph, its order, and what each package may use.

The rule (docs/bootstrap.md): a package's inputs are its stage's declared predecessors (`deps`), every
package of the previous stage, the packages of any earlier stage its stage lists in `inputs` (`seed`
is stage 0), and its own sources. Nothing else: not the rest of its own stage, not older stages. The
order of inputs is the order tools are found on `PATH`: own predecessors first, then the previous
stage, then the extra stages, so a stage-2 `sed` wins over the seed's. Within an earlier stage the
last-built package comes first, as if each had installed over the ones before it (the book's single
`$LFS`): a wrapper built at the end of a stage shadows the raw tool it wraps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from storekit.bootstrap.model import SEED, Package, Profile, Stage
from storekit.errors import ConfigError, DependencyCycle
from storekit.graph import toposort


def order(profile: Profile) -> list[tuple[Stage, list[Package]]]:
    """Stages in build order, each with its packages in dependency order (ties: declaration order).

    A cycle among `deps` is a `ConfigError` that names it.
    """
    result = []
    for stage in profile.stages:
        packages = profile.stage_packages(stage.name)
        result.append((stage, _topological(profile, packages)))
    return result


def _topological(profile: Profile, packages: list[Package]) -> list[Package]:
    try:
        ids = toposort([p.id for p in packages], lambda pid: profile.packages[pid].deps)
    except DependencyCycle as e:
        raise ConfigError(
            profile.file, f"packages.{e.cycle[0]}.deps", f"dependency cycle: {' -> '.join(map(str, e.cycle))}"
        ) from e
    return [profile.packages[pid] for pid in ids]


def previous_stage(profile: Profile, stage: str) -> str:
    """The stage before `stage` (`seed` for the first one)."""
    names = [s.name for s in profile.stages]
    index = names.index(stage)
    return SEED if index == 0 else names[index - 1]


def visible_inputs(profile: Profile, pkg: Package) -> list[str]:
    """Ids of what `pkg` is built with, in PATH order; `seed` stands for stage 0."""
    stage = profile.stage(pkg.stage)
    ids: list[str] = list(pkg.deps)
    for name in (previous_stage(profile, pkg.stage), *stage.inputs):
        ids.extend(_stage_members(profile, name))
    return list(dict.fromkeys(ids))


def _stage_members(profile: Profile, stage: str) -> list[str]:
    """A stage's packages, last built first; not its optional ones (a later stage cannot count on them)."""
    if stage == SEED:
        return [SEED]
    return [p.id for p in reversed(dict(order(profile))[profile.stage(stage)]) if not p.optional]


def dependents(profile: Profile) -> dict[str, set[str]]:
    """For each package id (and `seed`), the packages whose inputs include it, directly."""
    result: dict[str, set[str]] = {SEED: set(), **{pid: set() for pid in profile.packages}}
    for pkg in profile.packages.values():
        for dep in visible_inputs(profile, pkg):
            result[dep].add(pkg.id)
    return result


def downstream(profile: Profile, roots: Iterable[str]) -> set[str]:
    """Every package that depends, directly or not, on one of `roots` (roots included)."""
    edges = dependents(profile)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges[node])
    return seen


def default(profile: Profile) -> set[str]:
    """The package ids a plain `build` builds: all but the optional ones."""
    return {pid for pid, pkg in profile.packages.items() if not pkg.optional}


def until(profile: Profile, *targets: str) -> set[str]:
    """The package ids to build for `--until TARGET…` (stage names or package ids), targets included.

    A stage stands for its packages but not its optional ones; an optional package is built when named.
    """
    wanted: set[str] = set()
    for target in targets:
        if target in profile.packages:
            wanted.add(target)
        elif any(s.name == target for s in profile.stages):
            wanted.update(p.id for p in profile.stage_packages(target) if not p.optional)
        elif target != SEED:
            known = ", ".join(s.name for s in profile.stages)
            raise ConfigError(
                profile.file, "", f"--until '{target}' is neither a stage ({known}) nor a package"
            )
    closure: set[str] = set()
    todo = list(wanted)
    while todo:
        pid = todo.pop()
        if pid in closure or pid == SEED:
            continue
        closure.add(pid)
        todo.extend(visible_inputs(profile, profile.packages[pid]))
    return closure


def to_dot(profile: Profile, labels: Mapping[str, str] | None = None) -> str:
    """The package graph in Graphviz's language: one cluster per stage, an edge per direct input.

    Edges from every package of the previous stage would drown the picture, so a stage's implicit
    inputs are drawn once, stage to stage (between clusters), and `deps` as package edges.
    """
    labels = labels or {}
    lines = [f'digraph "{profile.name}" {{', "  rankdir=LR;", "  compound=true;", "  node [shape=box];"]
    lines.append(f'  subgraph "cluster_{SEED}" {{ label="{SEED}"; "{SEED}"; }}')
    ordered = order(profile)
    for stage, packages in ordered:
        lines.append(f'  subgraph "cluster_{stage.name}" {{')
        lines.append(f'    label="{stage.name}";')
        for pkg in packages:
            label = labels.get(pkg.id, f"{pkg.name} {pkg.version}")
            lines.append(f'    "{pkg.id}" [label="{label}"];')
        lines.append("  }")
    for stage, packages in ordered:
        for pkg in packages:
            lines.extend(f'  "{dep}" -> "{pkg.id}";' for dep in pkg.deps)
        first = packages[0].id
        for source in (previous_stage(profile, stage.name), *stage.inputs):
            tail = SEED if source == SEED else dict((s.name, p) for s, p in ordered)[source][-1].id
            attrs = f'ltail="cluster_{source}", lhead="cluster_{stage.name}"'
            style = ", style=dashed" if source in stage.inputs else ""
            lines.append(f'  "{tail}" -> "{first}" [{attrs}{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
