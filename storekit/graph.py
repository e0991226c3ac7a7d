"""The one topological sort, with the one cycle error: every ordering of a dependency graph in storekit.

Store paths by references (export, copy, relocation), derivations by inputs (builds), bootstrap packages
by `deps` and `.drv` files by input derivations all come out of `toposort`. It is a depth-first walk
with an explicit stack (a graph's depth is input, so no recursion), visiting roots and each node's
dependencies in the order given, so a caller that gives them sorted gets a stable order, as Nix's
`topoSortPaths` does. A cycle raises `DependencyCycle` naming the nodes around it.
"""

from __future__ import annotations

from storekit.errors import DependencyCycle

TYPE_CHECKING = False  # no `typing` at run time: every store imports this module (start-up)
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Iterator
    from typing import TypeVar

    N = TypeVar("N", bound=Hashable)


def toposort(roots: Iterable[N], depends_on: Callable[[N], Iterable[N]]) -> list[N]:
    """`roots` and everything they depend on, each node after all of its dependencies.

    `depends_on(node)` gives the node's direct dependencies (a node listing itself is a cycle; leave
    self-references out where they are allowed). Nodes reached only through dependencies are included.
    """
    order: list[N] = []
    done: set[N] = set()
    for root in roots:
        if root in done:
            continue
        stack: list[tuple[N, Iterator[N]]] = [(root, iter(depends_on(root)))]
        on_stack = {root}
        while stack:
            node, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                on_stack.discard(node)
                done.add(node)
                order.append(node)
            elif dep in on_stack:
                start = next(i for i, (n, _) in enumerate(stack) if n == dep)
                raise DependencyCycle((*(n for n, _ in stack[start:]), dep))
            elif dep not in done:
                on_stack.add(dep)
                stack.append((dep, iter(depends_on(dep))))
    return order
