"""`fetch_ahead.walk_closure` driven by a fake source whose lookups the test answers one by one: a
path's references are asked for as soon as its info arrives (not a level at a time), each info is
seen once, and an error cancels the lookups still waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from storekit.errors import PathNotValid, SubstituteError
from storekit.hashing import Hash
from storekit.store.base import ValidPathInfo
from storekit.storepath import StoreDir, StorePath
from storekit.transfer.fetch_ahead import walk_closure

STORE = StoreDir("/opt/walk/store")


def path(name: str) -> StorePath:
    return StorePath(STORE, name[0] * 32 if name[0] in "abcd" else "f" * 32, name)


A, B, C, D = (path(n) for n in ("a", "b", "c", "d"))
GRAPH = {A: {B, C}, B: {D}, C: set(), D: {D}}  # d refers to itself


def info(p: StorePath) -> ValidPathInfo:
    return ValidPathInfo(p, Hash("sha256", bytes(32)), 8, references=frozenset(GRAPH[p]))


class ManualSource:
    """Lookups wait until the test answers them; `asked` records each path asked for, in order."""

    def __init__(self) -> None:
        self.asked: list[StorePath] = []
        self.futures: dict[StorePath, Future[ValidPathInfo | None]] = {}
        self.changed = threading.Condition()

    def lookup(self, p: StorePath) -> Future[ValidPathInfo | None]:
        future: Future[ValidPathInfo | None] = Future()
        with self.changed:
            self.asked.append(p)
            self.futures[p] = future
            self.changed.notify_all()
        return future

    def wait_asked(self, count: int) -> list[StorePath]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.asked) >= count, timeout=10)
            return list(self.asked)

    def fetch(self, i: ValidPathInfo) -> bool:
        return False

    def nar_of(self, i: ValidPathInfo) -> Iterator[bytes]:
        raise AssertionError("not used by the walk")

    def close(self) -> None:
        pass


def walking(source: ManualSource, seen: list[StorePath]) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["infos"] = walk_closure(source, [A], lambda i: seen.append(i.path), "fake://cache")
        except BaseException as e:
            out["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_references_are_asked_for_as_soon_as_an_info_arrives() -> None:
    source, seen = ManualSource(), list[StorePath]()
    thread, out = walking(source, seen)
    assert source.wait_asked(1) == [A]
    source.futures[A].set_result(info(A))
    assert sorted(source.wait_asked(3)[1:]) == sorted([B, C])
    source.futures[B].set_result(info(B))  # C still waiting: D is asked for all the same
    assert source.wait_asked(4)[3] == D
    source.futures[D].set_result(info(D))
    source.futures[C].set_result(info(C))
    thread.join(10)
    assert out.get("infos") == {p: info(p) for p in GRAPH}
    assert seen == [A, B, D, C] and source.asked.count(D) == 1


def test_a_failed_lookup_is_raised_and_the_waiting_ones_are_cancelled() -> None:
    source, seen = ManualSource(), list[StorePath]()
    thread, out = walking(source, seen)
    source.wait_asked(1)
    source.futures[A].set_result(info(A))
    source.wait_asked(3)
    source.futures[B].set_exception(SubstituteError("narinfo of b: HTTP 500"))
    thread.join(10)
    assert isinstance(out.get("error"), SubstituteError)
    assert source.futures[C].cancelled()
    assert seen == [A]


def test_a_path_the_source_lacks_is_named_with_the_source() -> None:
    source, seen = ManualSource(), list[StorePath]()
    thread, out = walking(source, seen)
    source.wait_asked(1)
    source.futures[A].set_result(info(A))
    source.wait_asked(3)
    source.futures[C].set_result(None)
    thread.join(10)
    error = out.get("error")
    assert isinstance(error, PathNotValid) and str(C) in str(error) and "fake://cache" in str(error)
    assert source.futures[B].cancelled()


def test_an_error_from_on_info_stops_the_walk() -> None:
    source = ManualSource()

    def refuse(i: ValidPathInfo) -> None:
        if i.path == A:
            raise SubstituteError("refused")

    result: dict[str, BaseException] = {}

    def run() -> None:
        try:
            walk_closure(source, [A], refuse, "fake://cache")
        except BaseException as e:
            result["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    source.wait_asked(1)
    source.futures[A].set_result(info(A))
    thread.join(10)
    assert isinstance(result.get("error"), SubstituteError)
    assert all(source.futures[p].cancelled() for p in (B, C))


@pytest.mark.parametrize("roots", [[A, A], [A, B]])
def test_each_path_is_asked_for_once(roots: list[StorePath]) -> None:
    source = ManualSource()
    seen: list[StorePath] = []
    done: dict[str, object] = {}

    def run() -> None:
        done["infos"] = walk_closure(source, roots, lambda i: seen.append(i.path), "fake://cache")

    thread = threading.Thread(target=run)
    thread.start()
    answered: set[StorePath] = set()
    while thread.is_alive():  # answer every lookup as it comes, until the walk ends
        with source.changed:
            source.changed.wait(0.05)
            todo = [p for p in source.asked if p not in answered]
        for p in todo:
            answered.add(p)
            source.futures[p].set_result(info(p))
    thread.join(10)
    assert sorted(source.asked) == sorted(GRAPH) and sorted(seen) == sorted(GRAPH)
