"""`exportReferencesGraph` and the other files Nix 2.8 writes into the build directory before a build.

`exportReferencesGraph` hands a builder the reference graph of some of its inputs (Nix's
`Store::exportReferences`): the closure of each named path, plus the closures of the outputs of any
derivation in it. A named path must be in the derivation's input closure.

- Without structured attributes, the attribute is `name1 path1 name2 path2 …` and each graph goes to
  the file `/build/<name>` in the format of `nix-store --register-validity` without hashes and
  derivers (`makeValidityRegistration(…, false, false)`): per path, sorted, its path, an empty line,
  the number of references and the references.
- With structured attributes it is an object `{ name = [ paths ]; }` and each graph becomes the
  top-level key `name` of `.attrs.json`: a list of path infos as `nix path-info --json --closure-size`
  prints them without impure fields (`pathInfoToJSON(…, false, true)`).

`build_files` returns every file of that kind for one build: the `passAsFile` files come from
`sandbox.builder_env`, these from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from storekit.derivation.fs import read_derivation
from storekit.errors import BuildError, StorekitError
from storekit.realise import structured_attrs
from storekit.realise.plan import Goal
from storekit.store.base import Store
from storekit.storepath import StorePath

TYPE_CHECKING = False  # no `typing` at run time: a plain build imports this module (start-up)
if TYPE_CHECKING:
    from typing import Any

RealPath = Callable[[StorePath], str]
"""Where the files of a store path are (a `.drv` in a graph is read from there)."""


def build_files(store: Store, goal: Goal, closure: set[StorePath], real_path: RealPath) -> dict[str, str]:
    """The files to create in /build (name -> text) for `exportReferencesGraph` and structured attrs."""
    label = str(goal.drv_path)
    if not structured_attrs.is_structured(goal.drv):
        return legacy_files(store, goal, closure, real_path)
    attrs = structured_attrs.parse(goal.drv, label)
    graphs = structured_graphs(store, goal, attrs, closure, real_path)
    outputs = {name: str(path) for name, path in goal.outputs.items()}
    doc = structured_attrs.prepare(attrs, outputs, graphs)
    return structured_attrs.files(doc, outputs)


def legacy_files(store: Store, goal: Goal, closure: set[StorePath], real_path: RealPath) -> dict[str, str]:
    label = str(goal.drv_path)
    text = goal.drv.env.get("exportReferencesGraph", "")
    tokens = text.split()
    if len(tokens) % 2:
        raise BuildError(label, f"odd number of tokens in 'exportReferencesGraph': '{text}'")
    found = {}
    for name, path_text in zip(tokens[::2], tokens[1::2], strict=True):
        if not structured_attrs.is_name(name, more=".-"):
            raise BuildError(label, f"invalid file name '{name}' in 'exportReferencesGraph'")
        if not path_text.startswith(store.store_dir.path + "/"):
            raise BuildError(label, f"'exportReferencesGraph' contains a non-store path '{path_text}'")
        path = store.parse_path(path_text)
        found[name] = registration(store, export_references(store, [path], closure, label, real_path))
    return found


def structured_graphs(
    store: Store, goal: Goal, attrs: Mapping[str, Any], closure: set[StorePath], real_path: RealPath
) -> dict[str, list[dict[str, Any]]]:
    label = str(goal.drv_path)
    spec = attrs.get("exportReferencesGraph")
    if not isinstance(spec, dict):
        return {}
    graphs = {}
    for key, value in spec.items():
        items = value if isinstance(value, list) else [value]
        paths = []
        for item in items:
            if not isinstance(item, str):
                raise BuildError(label, f"'exportReferencesGraph.{key}' must hold store paths")
            try:
                paths.append(store.store_dir.parse_path(item))
            except (StorekitError, ValueError) as e:
                raise BuildError(label, f"'exportReferencesGraph.{key}': {e}") from e
        graphs[key] = path_infos(store, export_references(store, paths, closure, label, real_path))
    return graphs


def export_references(
    store: Store, paths: Iterable[StorePath], closure: set[StorePath], label: str, real_path: RealPath
) -> list[StorePath]:
    """Nix's `exportReferences`: the closures of `paths` and of the outputs of derivations in them."""
    found: set[StorePath] = set()
    for path in paths:
        if path not in closure:
            raise BuildError(
                label,
                f"cannot export references of path '{path}' because it is not in the input closure of "
                "the derivation",
            )
        found |= store.closure([path])
    for path in sorted(p for p in found if p.is_derivation):
        drv = read_derivation(real_path(path))
        for name, out in drv.outputs.items():
            if not out.path:
                raise BuildError(label, f"exportReferences of '{path}' output '{name}': it has no known path")
            found |= store.closure([store.store_dir.parse_path(out.path)])
    return sorted(found)


def registration(store: Store, paths: Iterable[StorePath]) -> str:
    """`makeValidityRegistration(paths, showDerivers=false, showHash=false)`."""
    lines = []
    for path in paths:
        refs = sorted(store.query_references(path))
        lines += [str(path), "", str(len(refs)), *map(str, refs)]
    return "".join(line + "\n" for line in lines)


def path_infos(store: Store, paths: Iterable[StorePath]) -> list[dict[str, Any]]:
    """`pathInfoToJSON(paths, includeImpureInfo=false, showClosureSize=true)`, base-32 hashes."""
    infos = []
    for path in paths:
        info = store.query_path_info(path)
        entry: dict[str, Any] = {
            "path": str(path),
            "narHash": str(info.nar_hash),
            "narSize": info.nar_size,
            "references": [str(r) for r in sorted(info.references)],
        }
        if info.ca:
            entry["ca"] = info.ca
        entry["closureSize"] = sum(store.query_path_info(p).nar_size for p in store.closure([path]))
        infos.append(entry)
    return infos
