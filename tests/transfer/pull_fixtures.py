"""What the pull-through cache tests share: a signed origin, servers run in threads, a bad upstream.

The origin is `CacheServer` over a `MemoryStore` of input-addressed paths signed by `KEY` (so only
the signature makes them trusted). `BadUpstream` is a real HTTP server on 127.0.0.1 that passes the
origin's answers on, spoiled in one way: a tampered NAR, a signature that does not verify, a body cut
short, or no answer at all.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

from storekit.hashing import Hash
from storekit.nar.writer import File, to_bytes
from storekit.narinfo import NarInfo
from storekit.signing import SecretKey
from storekit.store.base import ValidPathInfo
from storekit.store.binary_cache import BinaryCacheStore
from storekit.store.compression import decompressor
from storekit.store.memory import MemoryStore
from storekit.store.substituters import SignaturePolicy
from storekit.store.transport import HttpTransport
from storekit.storepath import StoreDir, StorePath
from storekit.transfer.cache_dir import CacheDir
from storekit.transfer.copy import copy_closure
from storekit.transfer.pull_through import PullThrough, PullThroughServer
from storekit.transfer.upstream import Upstream

STORE_DIR = StoreDir("/opt/pull-test/store")
KEY = SecretKey.generate("origin-1")
INTRUDER = SecretKey.generate("intruder-1")
TRUSTED = SignaturePolicy({KEY.name: KEY.public_key()})


class Serving(Protocol):
    url: str

    def serve_forever(self) -> None: ...
    def shutdown(self) -> None: ...
    def server_close(self) -> None: ...


@contextlib.contextmanager
def running(server: Serving) -> Iterator[Serving]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def add_signed(store: MemoryStore, name: str, data: bytes, refs: Iterable[StorePath] = ()) -> StorePath:
    """An input-addressed path (no CA: only `KEY`'s signature makes it trusted)."""
    nar = to_bytes(File(data))
    path = store.store_dir.make_store_path("output:out", Hash.of(name.encode() + data), name)
    info = ValidPathInfo(path, Hash.of(nar), len(nar), frozenset(refs))
    store.add_from_nar(info.with_sigs({KEY.sign(info.fingerprint())}), io.BytesIO(nar))
    return path


def origin_store(seed: int = 1, size: int = 300_000) -> tuple[MemoryStore, StorePath, StorePath]:
    """(store, dep, top): `top` refers to `dep`; both hold incompressible bytes."""
    store = MemoryStore(STORE_DIR)
    rng = random.Random(seed)
    dep = add_signed(store, f"dep-{seed}", rng.randbytes(size))
    top = add_signed(store, f"top-{seed}", str(dep).encode() + rng.randbytes(size), [dep])
    return store, dep, top


def pull_server(
    root: Path,
    upstreams: list[str],
    *,
    log: list[str],
    max_size: int | None = None,
    timeout: float = 5.0,
    policy: SignaturePolicy = TRUSTED,
) -> PullThroughServer:
    cache = CacheDir(str(root), STORE_DIR, max_size=max_size, log=log.append)
    ups = [Upstream(u, STORE_DIR, timeout=timeout) for u in upstreams]
    return PullThroughServer(PullThrough(cache, ups, policy, log=log.append), log=log.append)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def client_copy(url: str, paths: list[StorePath]) -> MemoryStore:
    """What a client of `url` ends up with: the closure, checked against the origin's key."""
    dst = MemoryStore(STORE_DIR)
    copy_closure(BinaryCacheStore(HttpTransport(url), STORE_DIR), dst, paths, policy=TRUSTED)
    return dst


def verify_cache_dir(root: Path) -> set[str]:
    """Check every narinfo in a cache dir against its NAR (name = file hash, NAR hash); its paths."""
    found = set()
    for narinfo_file in root.glob("*.narinfo"):
        narinfo = NarInfo.parse(narinfo_file.read_text(), STORE_DIR)
        data = (root / narinfo.url).read_bytes()
        assert narinfo.url == f"nar/{Hash.of(data).nix32}.nar" + narinfo.url.partition(".nar")[2]
        assert narinfo.file_hash == Hash.of(data) and narinfo.file_size == len(data)
        with decompressor(narinfo.compression, io.BytesIO(data), narinfo.store_path) as nar:  # type: ignore[arg-type]
            assert Hash.of(nar.read()) == narinfo.nar_hash
        found.add(str(narinfo.store_path))
    names = {p.name for p in (root / "nar").iterdir()}
    assert not [n for n in names if n.startswith(".tmp-")], names
    return found


class BadUpstream(ThreadingHTTPServer):
    """Passes the origin's answers on, spoiled as `mode` says (see the module docstring)."""

    daemon_threads = True
    MODES = ("tampered-nar", "forged-signature", "untrusted-signature", "truncated-nar", "hang", "stall-nar")

    def __init__(self, origin: str, mode: str) -> None:
        assert mode in self.MODES
        self.origin = origin
        self.mode = mode
        self.release = threading.Event()
        self.hits: list[str] = []
        super().__init__(("127.0.0.1", 0), _BadHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def shutdown(self) -> None:
        self.release.set()
        super().shutdown()


class _BadHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: BadUpstream

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        bad = self.server
        bad.hits.append(self.path)
        status, body, _ = get(bad.origin + self.path)
        is_nar, is_narinfo = self.path.startswith("/nar/"), self.path.endswith(".narinfo")
        if bad.mode == "hang" and is_narinfo:
            bad.release.wait()
            return
        if status == 200 and is_narinfo and bad.mode.endswith("-signature"):
            body = _resign(body, bad.mode)
        if status == 200 and is_nar and bad.mode == "tampered-nar":
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 1]) + body[middle + 1 :]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status == 200 and is_nar and bad.mode in ("truncated-nar", "stall-nar"):
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            if bad.mode == "stall-nar":
                bad.release.wait()
            self.close_connection = True
            return
        self.wfile.write(body)


def _resign(body: bytes, mode: str) -> bytes:
    """`forged-signature`: the trusted key's name over another fingerprint; `untrusted-…`: another key."""
    narinfo = NarInfo.parse(body.decode(), STORE_DIR)
    if mode == "forged-signature":
        sig = KEY.sign(narinfo.fingerprint().replace(narinfo.nar_hash.nix32, "0" * 52))
    else:
        sig = INTRUDER.sign(narinfo.fingerprint())
    lines = [line for line in body.decode().splitlines() if not line.startswith("Sig:")]
    return "".join(f"{line}\n" for line in [*lines, f"Sig: {sig}"]).encode()


def nar_files(root: Path) -> list[str]:
    return sorted(os.listdir(root / "nar"))
