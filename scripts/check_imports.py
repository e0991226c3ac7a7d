"""The import-graph check run by `just lint`: no import cycle in `storekit/`, no upward import.

Why a script and not a linter plugin: the rules are two (cycles counting imports inside functions and
under `TYPE_CHECKING`, and the four layers of docs/architecture.md), the graph is read with `ast`
alone, so the check needs no dependency and fails with a message naming the modules and lines.

The layers, lowest first: core < store < workflows < cli. A module may import its own layer or any
layer below it; among workflows only the order in `WORKFLOW_ORDER` holds (transfer calls relocate,
bootstrap calls realise, never the reverse). Run `python scripts/check_imports.py --graph` to print
every edge.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "storekit"

#: Top-level modules and subpackages of `storekit`, by layer (0 = lowest).
LAYERS: dict[str, int] = {
    # core: values, bytes and caller-given streams in, values out
    "errors": 0,
    "nixbase32": 0,
    "hashing": 0,
    "hashbase": 0,
    "frozen": 0,
    "storepath": 0,
    "nixversion": 0,
    "references": 0,
    "narinfo": 0,
    "signing": 0,
    "graph": 0,
    "progress": 0,
    "bytestreams": 0,
    "fdtree": 0,
    "realisation": 0,
    "tempdirs": 0,
    "programs": 0,
    "nar": 0,
    "derivation": 0,
    "wire": 0,
    "elf": 0,
    # stores (and the user's config file, which names stores)
    "store": 1,
    "config": 1,
    # workflows
    "realise": 2,
    "relocate": 2,
    "transfer": 2,
    "remote": 2,
    "bootstrap": 2,
    "templates": 2,
    # the CLI
    "cli": 3,
    "__main__": 3,
    "__init__": 3,
}
LAYER_NAMES = ("core", "store", "workflows", "cli")

#: Among workflows, a package may import only packages listed before it here (or itself).
WORKFLOW_ORDER = ("templates", "relocate", "transfer", "realise", "remote", "bootstrap")


@dataclass(frozen=True, slots=True)
class Edge:
    """`source` imports `target` at `line` (both dotted module names)."""

    source: str
    target: str
    line: int


def module_files(root: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (a package is its `__init__`)."""
    found: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def edges_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    """Every import of `module` into the package, wherever it sits in the file."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield Edge(module, _known(alias.name, modules), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(module, is_package, node)
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Edge(module, sub if sub in modules else _known(base, modules), node.lineno)


def _known(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of `name` that is a module (an attribute import names its module)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts) or name


def layer_of(module: str) -> tuple[int, str]:
    """The layer number and the top-level unit (`store`, `realise`, `errors` …) of a module."""
    parts = module.split(".")
    unit = parts[1] if len(parts) > 1 else "__init__"
    if unit not in LAYERS:
        raise SystemExit(f"{module}: not in a layer; add {unit!r} to LAYERS in {Path(__file__).name}")
    return LAYERS[unit], unit


def upward(edge: Edge) -> str | None:
    """Why `edge` goes against the layers, or None when it is allowed."""
    (src_layer, src_unit), (dst_layer, dst_unit) = layer_of(edge.source), layer_of(edge.target)
    if dst_layer > src_layer:
        return f"{LAYER_NAMES[src_layer]} imports {LAYER_NAMES[dst_layer]}"
    later = src_layer == dst_layer == 2 and WORKFLOW_ORDER.index(dst_unit) > WORKFLOW_ORDER.index(src_unit)
    return f"workflow {src_unit} imports {dst_unit}, which comes after it" if later else None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a self-import), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", action="store_true", help="print every edge")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    modules = module_files(args.root)
    edges = sorted(
        {e for m, p in modules.items() for e in edges_of(m, p, modules) if e.target != m},
        key=lambda e: (e.source, e.line, e.target),
    )
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for edge in edges:
        if edge.target in modules:
            graph[edge.source].add(edge.target)
    if args.graph:
        for edge in edges:
            print(f"{edge.source} -> {edge.target}  (line {edge.line})")
    problems = 0
    for component in cycles(graph):
        problems += 1
        members = set(component)
        print(f"import cycle among {len(component)} modules:", file=sys.stderr)
        for edge in edges:
            if edge.source in members and edge.target in members:
                rel = modules[edge.source].relative_to(args.root)
                print(f"  {rel}:{edge.line}: {edge.source} -> {edge.target}", file=sys.stderr)
    for edge in edges:
        reason = upward(edge)
        if reason:
            problems += 1
            rel = modules[edge.source].relative_to(args.root)
            print(f"{rel}:{edge.line}: upward import {edge.target} ({reason})", file=sys.stderr)
    if problems:
        print(f"{problems} import-graph problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
