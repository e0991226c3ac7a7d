"""`cache serve --upstream … --cache-dir …` in process: a leaf -> middle -> origin hierarchy over HTTP.

The origin is `CacheServer` over a store of signed input-addressed paths (uncompressed, xz and zstd
NARs); middle and leaf are pull-through servers. Clients are storekit's HTTP client with the origin's
key as the only trusted one, so a path that arrives intact and trusted went through verified hands.
Real Nix as the client is in tests/interop/test_pull_through_interop.py.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from pull_fixtures import (
    STORE_DIR,
    TRUSTED,
    add_signed,
    client_copy,
    get,
    nar_files,
    origin_store,
    pull_server,
    running,
    verify_cache_dir,
)
from s3_server import RadosGW

from storekit.errors import StoreError
from storekit.narinfo import NarInfo
from storekit.store.open import open_store
from storekit.transfer.cache_dir import CacheDir, locked_cache_dir
from storekit.transfer.copy import copy_closure
from storekit.transfer.serve import CacheServer


def narinfo_requests(log: list[str], path: object = None) -> list[str]:
    """The access-log lines of narinfo requests (of one path's, given one)."""
    wanted = f"/{str(path)[len(STORE_DIR.path) + 1 :][:32]}.narinfo" if path else ".narinfo"
    return [line for line in log if wanted in line]


@pytest.mark.parametrize("compression", ["none", "xz", "zstd"])
def test_a_three_level_hierarchy_fetches_once_and_serves_verified_copies(
    tmp_path: Path, compression: str
) -> None:
    store, dep, top = origin_store()
    origin_log: list[str] = []
    origin = CacheServer(store, compression=compression, access_log=True, log=origin_log.append)
    mid_log: list[str] = []
    leaf_log: list[str] = []
    with running(origin):
        with running(pull_server(tmp_path / "mid", [origin.url], log=mid_log)) as middle:
            leaf = pull_server(tmp_path / "leaf", [middle.url, origin.url], log=leaf_log)
            with running(leaf):
                first = client_copy(leaf.url, [top])
                assert b"".join(first.nar_from_path(top)) == b"".join(store.nar_from_path(top))
                assert first.closure([top]) == {dep, top}
                seen = len(origin_log)
                assert len(narinfo_requests(origin_log)) == 2  # dep and top, once each
                second = client_copy(leaf.url, [top])
                assert second.closure([top]) == {dep, top}
                assert len(origin_log) == seen, origin_log[seen:]
        assert not [line for line in leaf_log if "dropped" in line], leaf_log
    for level in ("mid", "leaf"):
        assert verify_cache_dir(tmp_path / level) == {str(dep), str(top)}
        for narinfo_file in (tmp_path / level).glob("*.narinfo"):
            assert NarInfo.parse(narinfo_file.read_text(), STORE_DIR).compression == compression


def test_the_leaf_falls_over_to_the_origin_when_the_middle_dies(tmp_path: Path) -> None:
    store, _, top = origin_store()
    origin_log: list[str] = []
    leaf_log: list[str] = []
    origin = CacheServer(store, access_log=True, log=origin_log.append)
    with running(origin):
        middle = pull_server(tmp_path / "mid", [origin.url], log=[])
        leaf = pull_server(tmp_path / "leaf", [middle.url, origin.url], log=leaf_log)
        with running(leaf):
            with running(middle):
                client_copy(leaf.url, [top])
            late = add_signed(store, "late", b"added after the middle died\n", [top])
            before = len(origin_log)
            got = client_copy(leaf.url, [late])
    assert got.closure([late]) == {late, *store.closure([top])}
    assert narinfo_requests(origin_log[before:], late)  # the origin answered the leaf itself
    dropped = [line for line in leaf_log if "dropped" in line and late.hash_part in line]
    assert dropped and middle.url in dropped[0] and "cannot reach" in dropped[0], leaf_log


def test_least_recently_used_paths_are_evicted_to_fit_max_size(tmp_path: Path) -> None:
    store, _, _ = origin_store()
    a, b, c = (add_signed(store, name, name.encode() * 40_000) for name in ("aaa", "bbb", "ccc"))
    origin_log: list[str] = []
    leaf_log: list[str] = []
    with running(CacheServer(store, access_log=True, log=origin_log.append)) as origin:
        leaf = pull_server(tmp_path / "leaf", [origin.url], log=leaf_log, max_size=250_000)
        with running(leaf):
            client_copy(leaf.url, [a])
            client_copy(leaf.url, [b])
            client_copy(leaf.url, [a])  # a is now more recently used than b
            client_copy(leaf.url, [c])
            assert verify_cache_dir(tmp_path / "leaf") == {str(a), str(c)}
            assert get(f"{leaf.url}/{b.hash_part}.narinfo")[0] == 200  # fetched again
            assert len(narinfo_requests(origin_log, b)) == 2 and len(narinfo_requests(origin_log, a)) == 1
    assert any("evicted" in line and str(b) in line for line in leaf_log), leaf_log
    total = sum(
        f.stat().st_size for f in (tmp_path / "leaf").rglob("*") if f.is_file() and ".storekit" not in str(f)
    )
    assert total <= 250_000 + 1000  # NARs and narinfos (nix-cache-info aside)


def test_a_narinfo_whose_nar_is_gone_is_never_served(tmp_path: Path) -> None:
    store, _, top = origin_store()
    origin = CacheServer(store)
    with running(origin):
        leaf = pull_server(tmp_path / "leaf", [origin.url], log=[])
        with running(leaf):
            _, body, _ = get(f"{leaf.url}/{top.hash_part}.narinfo")
            narinfo = NarInfo.parse(body.decode(), STORE_DIR)
            (tmp_path / "leaf" / narinfo.url).unlink()
            assert get(f"{leaf.url}/{top.hash_part}.narinfo")[0] == 200  # fetched again, NAR and all
            assert (tmp_path / "leaf" / narinfo.url).exists()
    leaf = pull_server(tmp_path / "leaf", [origin.url], log=[])  # the origin is gone now
    with running(leaf):
        (tmp_path / "leaf" / narinfo.url).unlink()
        assert get(f"{leaf.url}/{top.hash_part}.narinfo")[0] == 404
    assert not (tmp_path / "leaf" / f"{top.hash_part}.narinfo").exists()


def test_nars_answer_ranges_over_kept_alive_connections(tmp_path: Path) -> None:
    store, _, top = origin_store()
    nar = b"".join(store.nar_from_path(top))
    with running(CacheServer(store)) as origin:
        leaf = pull_server(tmp_path / "leaf", [origin.url], log=[])
        with running(leaf):
            conn = http.client.HTTPConnection("127.0.0.1", leaf.server_address[1], timeout=30)
            conn.request("GET", f"/{top.hash_part}.narinfo")
            answer = conn.getresponse()
            narinfo = NarInfo.parse(answer.read().decode(), STORE_DIR)
            sock = conn.sock
            conn.request("GET", f"/{narinfo.url}", headers={"Range": "bytes=1000-"})
            answer = conn.getresponse()
            assert answer.status == 206 and answer.read() == nar[1000:]
            assert answer.headers["Content-Range"] == f"bytes 1000-{len(nar) - 1}/{len(nar)}"
            conn.request("HEAD", f"/{narinfo.url}")
            answer = conn.getresponse()
            assert answer.status == 200 and int(answer.headers["Content-Length"]) == len(nar)
            answer.read()
            assert conn.sock is sock  # one connection for all three
            conn.close()


def test_concurrent_askers_share_one_fetch(tmp_path: Path) -> None:
    store, _, top = origin_store()
    origin_log: list[str] = []
    with running(CacheServer(store, access_log=True, log=origin_log.append)) as origin:
        leaf = pull_server(tmp_path / "leaf", [origin.url], log=[])
        with running(leaf):
            results: list[int] = []
            askers = [
                threading.Thread(target=lambda: results.append(get(f"{leaf.url}/{top.hash_part}.narinfo")[0]))
                for _ in range(8)
            ]
            for t in askers:
                t.start()
            for t in askers:
                t.join()
    assert results == [200] * 8
    assert len(narinfo_requests(origin_log, top)) == 1


def test_the_cache_dir_is_a_plain_binary_cache_and_has_one_server(tmp_path: Path) -> None:
    store, dep, top = origin_store()
    with running(CacheServer(store)) as origin:
        leaf = pull_server(tmp_path / "leaf", [origin.url], log=[])
        with running(leaf):
            client_copy(leaf.url, [top])
            with pytest.raises(StoreError, match="in use by another"):
                CacheDir(str(tmp_path / "leaf"), STORE_DIR)
    with open_store(f"file://{tmp_path / 'leaf'}?store={STORE_DIR}") as cache:
        from storekit.store.memory import MemoryStore

        dst = MemoryStore(STORE_DIR)
        copy_closure(cache, dst, [top], policy=TRUSTED)
        assert dst.closure([top]) == {dep, top}
    # restarted without any upstream answering, it serves what it kept
    leaf = pull_server(tmp_path / "leaf", ["http://127.0.0.1:9"], log=[])
    with running(leaf):
        assert client_copy(leaf.url, [top]).closure([top]) == {dep, top}
    assert len(nar_files(tmp_path / "leaf")) == 2


def test_an_s3_bucket_as_the_origin(
    tmp_path: Path, radosgw: RadosGW, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream is an `s3://` cache on a real radosgw, read through storekit's S3 transport."""
    import boto3

    for key, value in radosgw.env({}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"pull-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=radosgw.endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    store, dep, top = origin_store()
    spec = radosgw.spec(bucket, STORE_DIR.path, compression="zstd")
    with open_store(spec) as bucket_cache:
        copy_closure(store, bucket_cache, [top])
    log: list[str] = []
    with running(pull_server(tmp_path / "leaf", [spec], log=log)) as leaf:
        got = client_copy(leaf.url, [top])
    assert got.closure([top]) == {dep, top}
    assert verify_cache_dir(tmp_path / "leaf") == {str(dep), str(top)}
    assert sum("fetched" in line and spec.split("?")[0] in line for line in log) == 2, log


def test_a_gc_holding_the_lock_holds_off_additions(tmp_path: Path) -> None:
    """`cache gc` takes `.storekit/lock` (docs/caches.md): while it is held, nothing is renamed in."""
    store, _, top = origin_store()
    with running(CacheServer(store)) as origin:
        leaf = pull_server(tmp_path / "leaf", [origin.url], log=[])
        with running(leaf):
            results: list[int] = []
            url = f"{leaf.url}/{top.hash_part}.narinfo"
            asker = threading.Thread(target=lambda: results.append(get(url)[0]))
            with locked_cache_dir(str(tmp_path / "leaf")):
                asker.start()
                asker.join(1.0)
                assert asker.is_alive() and not list((tmp_path / "leaf").glob("*.narinfo"))
            asker.join()
    assert results == [200] and (tmp_path / "leaf" / f"{top.hash_part}.narinfo").exists()


def test_pull_through_usage_errors(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "storekit", "cache", "serve", "--port", "0"]
    for extra, message in [
        (["--upstream", "http://127.0.0.1:9"], "needs both --upstream URL and --cache-dir DIR"),
        (["--upstream", "http://127.0.0.1:9", "--cache-dir", "c", "--compression", "xz"], "takes no --store"),
        (["--max-size", "1G"], "--max-size is for a pull-through cache"),
        (
            ["--upstream", "http://127.0.0.1:9", "--cache-dir", str(tmp_path / "c")],
            "cannot tell the store dir",
        ),
    ]:
        proc = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr


def test_a_cache_dir_seeded_as_a_file_cache_is_adopted_and_fitted(tmp_path: Path) -> None:
    """Paths written by `copy --to file://DIR` are served, and count against --max-size at start-up."""
    store, dep, top = origin_store()
    with open_store(f"file://{tmp_path / 'leaf'}?store={STORE_DIR}&compression=zstd") as seed:
        copy_closure(store, seed, [top])
    log: list[str] = []
    with running(pull_server(tmp_path / "leaf", ["http://127.0.0.1:9"], log=log)) as leaf:
        assert client_copy(leaf.url, [top]).closure([top]) == {dep, top}
    with running(pull_server(tmp_path / "leaf", ["http://127.0.0.1:9"], log=log, max_size=400_000)):
        assert len(verify_cache_dir(tmp_path / "leaf")) == 1  # one of the two ~300 kB paths had to go
    assert sum("evicted" in line for line in log) == 1, log
