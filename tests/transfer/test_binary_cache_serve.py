"""`CacheServer` (behind `storekit cache serve`) on a small in-memory store: routes, HEAD, 404s, and
storekit's own HTTP client reading it (real Nix reading it is in tests/interop/test_cache_interop.py).
"""

from __future__ import annotations

import http.client
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from storekit.nar.writer import File, to_bytes
from storekit.narinfo import NarInfo, NixCacheInfo
from storekit.signing import SecretKey
from storekit.store.binary_cache import BinaryCacheStore
from storekit.store.memory import MemoryStore
from storekit.store.substituters import SignaturePolicy
from storekit.store.transport import HttpTransport
from storekit.storepath import StoreDir
from storekit.transfer.copy import copy_closure
from storekit.transfer.serve import CacheServer

STORE_DIR = StoreDir("/opt/serve-test/store")
KEY = SecretKey.generate("serve-unit-1")


@pytest.fixture(params=["none", "xz", "zstd"])
def server(request: pytest.FixtureRequest) -> Iterator[CacheServer]:
    store = MemoryStore(STORE_DIR)
    dep = store.add_text("dep.txt", b"dep\n")
    store.add_text("top.txt", f"uses {dep}\n".encode(), [dep])
    srv = CacheServer(store, port=0, compression=request.param, secret_keys=[KEY])
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def get(url: str, method: str = "GET") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_routes_and_signatures(server: CacheServer) -> None:
    status, body = get(f"{server.url}/nix-cache-info")
    assert status == 200
    assert NixCacheInfo.parse(body.decode()) == NixCacheInfo(STORE_DIR.path, True, 30)
    top = next(p for p in server.store.query_all_valid_paths() if p.name == "top.txt")
    status, body = get(f"{server.url}/{top.hash_part}.narinfo")
    narinfo = NarInfo.parse(body.decode(), STORE_DIR)
    assert status == 200 and narinfo.store_path == top and narinfo.compression == server.compression
    assert SignaturePolicy({KEY.name: KEY.public_key()}).good_signatures(
        server.store.query_path_info(top).with_sigs(narinfo.sigs)
    )
    assert get(f"{server.url}/{top.hash_part}.narinfo", "HEAD") == (200, b"")
    status, nar = get(f"{server.url}/{narinfo.url}")
    assert status == 200 and len(nar) > 0
    assert get(f"{server.url}/{'0' * 32}.narinfo")[0] == 404
    stale = narinfo.url.replace(narinfo.nar_hash.nix32, "0" * 52)  # the path changed since
    assert get(f"{server.url}/{stale}")[0] == 404
    assert get(f"{server.url}/nar/../etc/passwd")[0] == 404


def test_storekit_reads_its_own_server(server: CacheServer) -> None:
    cache = BinaryCacheStore(HttpTransport(server.url), STORE_DIR)
    assert cache.cache_info is not None and cache.cache_info.store_dir == STORE_DIR.path
    top = next(p for p in server.store.query_all_valid_paths() if p.name == "top.txt")
    dst = MemoryStore(STORE_DIR)
    copy_closure(cache, dst, [top], policy=SignaturePolicy({KEY.name: KEY.public_key()}))
    assert dst.closure([top]) == server.store.closure([top])
    assert b"".join(dst.nar_from_path(top)) == b"".join(server.store.nar_from_path(top))


def test_plain_nars_resume_with_range_on_one_connection() -> None:
    """A NAR made on the fly answers `Range` (206, Content-Range), 416 past its end, over keep-alive."""
    store = MemoryStore(STORE_DIR)
    big = store.add_text("big.txt", bytes(range(256)) * 4000)
    nar = b"".join(store.nar_from_path(big))
    assert nar == to_bytes(File(bytes(range(256)) * 4000))
    srv = CacheServer(store, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=30)
        conn.request("GET", f"/{big.hash_part}.narinfo")
        narinfo = NarInfo.parse(conn.getresponse().read().decode(), STORE_DIR)
        sock = conn.sock
        for header, status, body in [
            ("bytes=1000-1999", 206, nar[1000:2000]),
            ("bytes=700000-", 206, nar[700000:]),
            ("bytes=-10", 206, nar[-10:]),
            ("bytes=0-0,5-6", 200, nar),  # several ranges: the whole NAR, as a server may answer
        ]:
            conn.request("GET", f"/{narinfo.url}", headers={"Range": header})
            answer = conn.getresponse()
            assert (answer.status, answer.read()) == (status, body), header
        conn.request("GET", f"/{narinfo.url}", headers={"Range": f"bytes={len(nar)}-"})
        answer = conn.getresponse()
        assert answer.status == 416 and answer.headers["Content-Range"] == f"bytes */{len(nar)}"
        answer.read()
        assert conn.sock is sock
        conn.close()
    finally:
        srv.shutdown()
        srv.server_close()
