"""The one topological sort: dependencies first, stable, iterative, and a cycle named node by node."""

from __future__ import annotations

import pytest

from storekit.errors import DependencyCycle, InvalidValue
from storekit.graph import toposort


def test_every_node_comes_after_its_dependencies_in_the_order_given() -> None:
    deps = {"app": ["lib", "cfg"], "lib": ["libc"], "cfg": [], "libc": []}
    assert toposort(["app"], deps.__getitem__) == ["libc", "lib", "cfg", "app"]
    assert toposort(sorted(deps), deps.__getitem__) == ["libc", "lib", "cfg", "app"]
    assert toposort(["cfg", "app"], deps.__getitem__) == ["cfg", "libc", "lib", "app"]


def test_a_shared_dependency_appears_once() -> None:
    deps = {"a": ["c"], "b": ["c"], "c": []}
    assert toposort(["a", "b"], deps.__getitem__) == ["c", "a", "b"]


def test_a_cycle_names_the_nodes_around_it() -> None:
    deps = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    with pytest.raises(DependencyCycle) as info:
        toposort(["d"], deps.__getitem__)
    assert info.value.cycle == ("a", "b", "c", "a")
    assert str(info.value) == "dependency cycle: a -> b -> c -> a"
    assert isinstance(info.value, InvalidValue)


def test_a_self_dependency_is_a_cycle() -> None:
    with pytest.raises(DependencyCycle, match="x -> x"):
        toposort(["x"], lambda n: [n])


def test_depth_is_not_limited_by_recursion() -> None:
    n = 50_000
    order = toposort([0], lambda i: [i + 1] if i < n else [])
    assert order == list(range(n, -1, -1))
