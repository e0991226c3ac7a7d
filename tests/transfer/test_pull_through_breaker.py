"""An upstream that keeps failing is skipped for a while instead of being asked on every request.

The failing upstream is real: a port on 127.0.0.1 where nothing listens (every connection refused),
or a `BadUpstream` serving tampered NARs. The leaf's breaker runs on a clock the test moves, so the
pause ends when the test says, not after a wait.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pull_fixtures import (
    STORE_DIR,
    TRUSTED,
    BadUpstream,
    add_signed,
    get,
    origin_store,
    running,
    verify_cache_dir,
)

from storekit.store.memory import MemoryStore
from storekit.storepath import StorePath
from storekit.transfer.cache_dir import CacheDir
from storekit.transfer.pull_through import PullThrough, PullThroughServer
from storekit.transfer.serve import CacheServer
from storekit.transfer.upstream import Upstream
from storekit.transfer.upstream_breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def leaf(root: Path, upstreams: list[str], log: list[str], clock: Clock) -> PullThroughServer:
    cache = CacheDir(str(root), STORE_DIR, log=log.append)
    ups = [Upstream(u, STORE_DIR, timeout=2.0) for u in upstreams]
    pull = PullThrough(cache, ups, TRUSTED, log=log.append, breaker=lambda: Breaker(3, 10.0, 300.0, clock))
    return PullThroughServer(pull, log=log.append)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def paths(store: MemoryStore, count: int) -> list[StorePath]:
    return [add_signed(store, f"extra-{i}", f"extra {i}".encode() * 100) for i in range(count)]


def about(upstream: str, log: list[str], what: str) -> list[str]:
    return [line for line in log if f"'{upstream}'" in line and what in line]


def test_a_refusing_upstream_is_skipped_after_three_failures_then_tried_again(tmp_path: Path) -> None:
    store, _, _ = origin_store()
    wanted = paths(store, 8)
    port = closed_port()
    dead = f"http://127.0.0.1:{port}"
    log: list[str] = []
    clock = Clock()
    with (
        running(CacheServer(store)) as origin,
        running(leaf(tmp_path / "leaf", [dead, origin.url], log, clock)) as node,
    ):
        for p in wanted[:6]:
            assert get(f"{node.url}/{p.hash_part}.narinfo")[0] == 200
        assert len(about(dead, log, "dropped")) == 3  # the next three requests did not ask it
        assert about(dead, log, "skipped for 10 s: 3 failed requests in a row")
        # it comes back, but the pause is not over: still skipped
        with running(CacheServer(store, port=port)):
            assert get(f"{node.url}/{wanted[6].hash_part}.narinfo")[0] == 200
            assert not about(dead, log, "fetched")
            clock.now += 10.0
            assert get(f"{node.url}/{wanted[7].hash_part}.narinfo")[0] == 200
            assert about(dead, log, f"fetched {wanted[7]}")
    assert len(about(dead, log, "dropped")) == 3
    assert verify_cache_dir(tmp_path / "leaf") == {str(p) for p in wanted}


def test_a_failed_retry_doubles_the_pause(tmp_path: Path) -> None:
    store, _, _ = origin_store()
    wanted = paths(store, 6)
    log: list[str] = []
    clock = Clock()
    with (
        running(CacheServer(store)) as origin,
        running(BadUpstream(origin.url, "tampered-nar")) as bad,
        running(leaf(tmp_path / "leaf", [bad.url, origin.url], log, clock)) as node,
    ):
        for p in wanted[:4]:
            assert get(f"{node.url}/{p.hash_part}.narinfo")[0] == 200
        narinfos_asked = [h for h in bad.hits if h.endswith(".narinfo")]
        assert len(narinfos_asked) == 3, bad.hits
        clock.now += 10.0
        assert get(f"{node.url}/{wanted[4].hash_part}.narinfo")[0] == 200  # the retry, tampered again
        assert about(bad.url, log, "skipped for 20 s")
        clock.now += 10.0  # half the new pause
        assert get(f"{node.url}/{wanted[5].hash_part}.narinfo")[0] == 200
        assert len([h for h in bad.hits if h.endswith(".narinfo")]) == 4
    assert len(about(bad.url, log, "dropped")) == 4
    assert verify_cache_dir(tmp_path / "leaf") == {str(p) for p in wanted}
