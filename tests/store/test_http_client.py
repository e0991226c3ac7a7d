"""The HTTP client of binary caches (store/http_client.py) against small servers on 127.0.0.1 that
count connections, cut a NAR's body, hang, or fail some narinfos: connections are reused, a cut
download resumes with `Range`, a hang is a timeout error that says which, and the closure's narinfos
fetched in parallel are the right ones, or the copy fails naming the one that failed."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from storekit.errors import HashMismatch, PathNotValid, SignatureError, SubstituteError
from storekit.store.local import LocalStore
from storekit.store.open import open_store
from storekit.store.specs import local_spec_for
from storekit.store.substituters import SignaturePolicy
from storekit.storepath import StorePath
from storekit.transfer.copy import closure_infos, copy_closure

STORE_DIR = "/opt/httpclient/store"
NO_SIGS = SignaturePolicy(require_sigs=False)
Behaviour = Callable[["Handler", bytes], bool]  # True: answered (or dropped) here


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx
    server: CacheServer

    def setup(self) -> None:
        super().setup()
        with self.server.guard:
            self.server.connections += 1

    def do_GET(self) -> None:
        server = self.server
        with server.guard:
            server.requests.append((self.path, self.headers.get("Range")))
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            name = urllib.parse.unquote(self.path).lstrip("/")
            file = server.root / name
            body = file.read_bytes() if file.is_file() else None
            if server.delay:
                time.sleep(server.delay)
            if server.behaviour is not None and body is not None and server.behaviour(self, body):
                return
            if body is None:
                self.answer(404, b"not here\n")
            else:
                self.send_ranged(body)
        finally:
            with server.guard:
                server.in_flight -= 1

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_ranged(self, body: bytes) -> None:
        etag = {"ETag": f'"{len(body)}-{hash(body) & 0xFFFF}"'}
        wanted = self.headers.get("Range")
        if wanted and not self.server.ignore_range and wanted.startswith("bytes="):
            start = int(wanted[6:].split("-")[0])
            part = f"bytes {start}-{len(body) - 1}/{len(body)}"
            self.answer(206, body[start:], {**etag, "Content-Range": part})
        else:
            self.answer(200, body, {**etag, "Accept-Ranges": "bytes"})

    def cut(self, body: bytes, at: int) -> None:
        """Headers for the whole body, `at` bytes of it, then the connection closes."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{len(body)}-{hash(body) & 0xFFFF}"')
        self.end_headers()
        self.wfile.write(body[:at])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args: object) -> None:
        pass


class CacheServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.root = root
        self.guard = threading.Lock()
        self.connections = 0
        self.requests: list[tuple[str, str | None]] = []
        self.in_flight = self.max_in_flight = 0
        self.behaviour: Behaviour | None = None
        self.ignore_range = False
        self.delay = 0.0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, **params: object) -> str:
        query = "".join(f"&{k.replace('_', '-')}={v}" for k, v in params.items())
        return f"http://127.0.0.1:{self.server_address[1]}?store={STORE_DIR}{query}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def local(root: Path) -> LocalStore:
    return LocalStore(local_spec_for(STORE_DIR, state_dir=str(root / "var"), real_dir=str(root / "store")))


@pytest.fixture(params=["xz"])
def cache(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[CacheServer, StorePath, dict[StorePath, bytes]]]:
    """A served cache (xz, or the compression a test names with `indirect`) of `root` -> 40 small
    paths and one of 300 KiB; yields (server, root, texts)."""
    texts: dict[StorePath, bytes] = {}
    with local(tmp_path / "src") as src:
        leaves = []
        for i in range(40):
            text = f"leaf {i}\n".encode() * (1 + i)
            leaves.append(src.add_text(f"leaf-{i}", text))
            texts[leaves[-1]] = text
        big = os.urandom(150 << 10).hex().encode()  # 300 KiB that xz cannot shrink much
        leaves.append(src.add_text("big", big))
        texts[leaves[-1]] = big
        root = src.add_text("root", b"root\n", leaves)
        texts[root] = b"root\n"
        uri = f"file://{tmp_path / 'cache'}?store={STORE_DIR}&compression={request.param}"
        with open_store(uri) as dst:
            copy_closure(src, dst, [root])
    server = CacheServer(tmp_path / "cache")
    yield server, root, texts
    server.stop()


def substitute(url: str, root: StorePath, into: Path, jobs: int = 4) -> LocalStore:
    dst = local(into)
    with open_store(url) as src:
        copy_closure(src, dst, [root], policy=NO_SIGS, jobs=jobs)
    return dst


def check_contents(dst: LocalStore, texts: dict[StorePath, bytes]) -> None:
    for path, text in texts.items():
        assert dst.is_valid_path(path)
        with open(dst.real_path(path), "rb") as f:
            assert f.read() == text


def nar_names(server: CacheServer) -> list[str]:
    return [p for p, _ in server.requests if p.startswith("/nar/")]


def test_connections_are_kept_alive_and_reused(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    """84 requests (nix-cache-info, 42 narinfos, 42 NARs) over at most `http-connections` connections."""
    server, root, texts = cache
    with substitute(server.url(http_connections=3), root, tmp_path / "dst", jobs=4) as dst:
        check_contents(dst, texts)
    assert len(server.requests) >= 85
    assert 1 <= server.connections <= 3, server.connections
    assert server.max_in_flight <= 3


def test_parallel_requests_are_bounded_by_http_connections(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    """With a slow server, narinfos and NARs are asked for several at a time, never more than allowed."""
    server, root, texts = cache
    server.delay = 0.02
    with substitute(server.url(http_connections=6), root, tmp_path / "dst", jobs=8) as dst:
        check_contents(dst, texts)
    assert 2 <= server.max_in_flight <= 6, server.max_in_flight
    assert server.connections <= 6


@pytest.mark.parametrize("cache", ["xz", "zstd", "none"], indirect=True)
@pytest.mark.parametrize("ignore_range", [False, True])
def test_a_nar_cut_mid_body_resumes(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path, ignore_range: bool
) -> None:
    """Each NAR's first answer stops halfway and the connection closes: the rest comes by a `Range`
    request from where it broke (or, from a server ignoring ranges, whole, with the first part
    skipped); the file hash of every xz file and the NAR hash of every path still match."""
    server, root, texts = cache
    server.ignore_range = ignore_range
    cut: set[str] = set()

    def cut_once(h: Handler, body: bytes) -> bool:
        if not h.path.startswith("/nar/") or h.path in cut or len(body) < 2:
            return False
        cut.add(h.path)
        h.cut(body, len(body) // 2)
        return True

    server.behaviour = cut_once
    with substitute(server.url(), root, tmp_path / "dst") as dst:
        check_contents(dst, texts)
    assert len(cut) == len(texts)
    ranges = [r for p, r in server.requests if p.startswith("/nar/") and r]
    assert len(ranges) == len(texts)
    sizes = {p: (server.root / p.lstrip("/")).stat().st_size for p in cut}
    assert {(p, r) for p, r in server.requests if r} == {(p, f"bytes={sizes[p] // 2}-") for p in cut}


def test_a_nar_cut_too_often_is_a_truncated_download(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    """A server that cuts every answer: a few resumes, then one error with the byte count; nothing is
    added to the store."""
    server, root, _ = cache

    def always_cut(h: Handler, body: bytes) -> bool:
        if not h.path.startswith("/nar/") or len(body) < 1000:
            return False
        start = int((h.headers.get("Range") or "bytes=0-")[6:].split("-")[0])
        h.cut(body, start + 10)  # headers say the whole file: the client sees a short body
        return True

    server.behaviour = always_cut
    dst = local(tmp_path / "dst")
    pattern = r"download of '.*/nar/.*' failed after \d+ bytes: .*; gave up after 5 resumed requests"
    with open_store(server.url()) as src, pytest.raises(SubstituteError, match=pattern):
        copy_closure(src, dst, [root], policy=NO_SIGS)
    assert not dst.is_valid_path(root)
    dst.close()


def hanging_listener() -> tuple[socket.socket, threading.Event]:
    """A server that accepts, reads a request and never answers."""
    sock = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        held = []
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            held.append(conn)
            conn.recv(65536)
        for conn in held:
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock, stop


def test_a_hanging_server_is_a_read_timeout_that_says_so() -> None:
    sock, stop = hanging_listener()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}?store={STORE_DIR}&stalled-download-timeout=0.5"
    started = time.monotonic()
    try:
        with pytest.raises(SubstituteError, match=r"sent nothing for 0.5 s \(read timeout\)") as e:
            open_store(url)
        assert "nix-cache-info" in str(e.value)
        assert time.monotonic() - started < 30
    finally:
        stop.set()
        sock.close()


def test_a_nar_stalling_mid_body_resumes_after_the_read_timeout(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    server, root, texts = cache
    stalled: set[str] = set()
    release = threading.Event()

    def stall_once(h: Handler, body: bytes) -> bool:
        if not h.path.startswith("/nar/") or h.path in stalled or len(body) < 100_000:
            return False
        stalled.add(h.path)
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:1000])
        h.wfile.flush()
        release.wait(30)  # silent, connection open
        h.close_connection = True
        return True

    server.behaviour = stall_once
    try:
        with substitute(server.url(stalled_download_timeout=0.5), root, tmp_path / "dst") as dst:
            check_contents(dst, texts)
    finally:
        release.set()
    assert len(stalled) == 1
    assert any(r == "bytes=1000-" for _, r in server.requests), [
        x for x in server.requests if x[1] or x[0] in stalled
    ]


def test_a_full_accept_queue_is_a_connect_timeout() -> None:
    """A listener whose backlog is full drops the SYN: the connect timeout runs out, and says so."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue (backlog 0 still queues one or two)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
            pytest.skip("this kernel accepts past a full backlog: no way to make a connect hang here")
        except TimeoutError:
            pass
        finally:
            probe.close()
        url = f"http://127.0.0.1:{port}?store={STORE_DIR}&connect-timeout=0.5"
        with pytest.raises(SubstituteError, match=r"no connection within the connect timeout of 0.5 s"):
            open_store(url)
    finally:
        for filler in fillers:
            filler.close()
        sock.close()


def test_parallel_narinfo_queries_return_each_paths_own_info(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    """Narinfos answered out of order (random delays) by several connections: each info is its path's."""
    server, root, _ = cache
    import random

    rng = random.Random(5)

    def jitter(h: Handler, body: bytes) -> bool:
        time.sleep(rng.random() * 0.02)
        return False

    server.behaviour = jitter
    with (
        local(tmp_path / "src2") as _,
        open_store(server.url()) as src,
        open_store(f"file://{server.root}?store={STORE_DIR}") as files,
    ):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:
            got = closure_infos(src, [root], pool)
            want = closure_infos(files, [root], pool)
    assert got == want and len(got) == 42
    assert server.max_in_flight > 1


@pytest.mark.parametrize("failure", ["500", "drop", "404"])
def test_a_failing_narinfo_fails_the_copy_naming_it(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path, failure: str
) -> None:
    """One narinfo among 42 fetched in parallel fails: the copy fails with that path's URL or name and
    the reason, before any path is added; NARs fetched and staged meanwhile leave nothing behind."""
    server, root, texts = cache
    victim = sorted(p for p in texts if p.name == "leaf-17")[0]
    name = f"/{victim.hash_part}.narinfo"

    def fail(h: Handler, body: bytes) -> bool:
        if h.path != name:
            return False
        if failure == "500":
            h.answer(500, b"boom\n")
        elif failure == "404":
            h.answer(404, b"gone\n")
        else:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        return True

    server.behaviour = fail
    dst = local(tmp_path / "dst")
    expected = {
        "500": (SubstituteError, rf"HTTP 500 .*{victim.hash_part}\.narinfo"),
        "drop": (SubstituteError, rf"{victim.hash_part}\.narinfo.*connection broke"),
        "404": (PathNotValid, victim.hash_part),
    }[failure]
    with open_store(server.url()) as src, pytest.raises(expected[0], match=expected[1]):
        copy_closure(src, dst, [root], policy=NO_SIGS)
    assert dst.query_all_valid_paths() == set()
    assert not [n for n in os.listdir(tmp_path / "dst" / "store") if n != ".links"]
    dst.close()


def test_a_narinfo_arriving_in_pieces_is_read_whole(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    """Each narinfo's body comes in two writes 50 ms apart: the client waits for all of it."""
    server, root, texts = cache

    def in_pieces(h: Handler, body: bytes) -> bool:
        if not h.path.endswith(".narinfo"):
            return False
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:20])
        h.wfile.flush()
        time.sleep(0.05)
        h.wfile.write(body[20:])
        return True

    server.behaviour = in_pieces
    with substitute(server.url(), root, tmp_path / "dst") as dst:
        check_contents(dst, texts)


# --- the closure walked and its NARs fetched at once (transfer/fetch_ahead.py) ------------------------


def wait_for(condition: Callable[[], object], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_nars_are_fetched_while_the_closure_is_still_walked(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    """One leaf's narinfo is held back until a NAR was asked for: with the walk and the downloads
    as two phases that never happens (the test would see no NAR before it answers)."""
    server, root, texts = cache
    late = sorted(p for p in texts if p.name == "leaf-39")[0]
    seen_nar_first: list[bool] = []

    def hold(h: Handler, body: bytes) -> bool:
        if h.path == f"/{late.hash_part}.narinfo":
            seen_nar_first.append(wait_for(lambda: nar_names(server)))
        return False

    server.behaviour = hold
    with substitute(server.url(), root, tmp_path / "dst") as dst:
        check_contents(dst, texts)
    assert seen_nar_first == [True]


def test_nars_answered_out_of_order_are_installed_in_dependency_order(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    """NARs come back in random order (delays up to 30 ms): every path is installed, each after its
    references (the store refuses a path whose references are not valid yet)."""
    server, root, texts = cache
    import random

    rng = random.Random(7)

    def jitter(h: Handler, body: bytes) -> bool:
        if h.path.startswith("/nar/"):
            time.sleep(rng.random() * 0.03)
        return False

    server.behaviour = jitter
    with substitute(server.url(), root, tmp_path / "dst") as dst:
        check_contents(dst, texts)
        for path in texts:
            assert dst.query_path_info(path).references <= set(texts)


def test_a_tampered_nar_fetched_ahead_fails_the_copy_and_leaves_nothing_half_valid(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    """One leaf's NAR is damaged on the wire (same length, so its file hash is what catches it): the
    copy fails naming the path and both hashes; the root is not valid, whatever is valid has its
    whole closure valid, nothing staged is left, and the transport's event loop is gone."""
    server, root, texts = cache
    victim = sorted(p for p in texts if p.name == "leaf-3")[0]
    with open_store(f"file://{server.root}?store={STORE_DIR}") as files:
        narinfo = files.lookup_narinfo(victim)  # type: ignore[attr-defined]

    def tamper(h: Handler, body: bytes) -> bool:
        if h.path != f"/{narinfo.url}":
            return False
        h.answer(200, body[:-4] + bytes(b ^ 0xFF for b in body[-4:]))
        return True

    server.behaviour = tamper
    dst = local(tmp_path / "dst")
    before = set(threading.enumerate())
    with open_store(server.url()) as src, pytest.raises(HashMismatch) as caught:
        copy_closure(src, dst, [root], policy=NO_SIGS)
    assert str(victim) in str(caught.value) and str(narinfo.file_hash) in str(caught.value)
    assert caught.value.got != caught.value.expected
    valid = dst.query_all_valid_paths()
    assert root not in valid and victim not in valid
    for path in valid:
        assert dst.query_path_info(path).references <= valid
    names = {n for n in os.listdir(tmp_path / "dst" / "store") if n != ".links"}
    assert names == {p.base_name for p in valid}
    assert not [t for t in set(threading.enumerate()) - before if t.name == "storekit-http"]
    dst.close()


def test_no_nar_is_asked_for_before_its_path_passed_the_signature_policy(
    cache: tuple[CacheServer, StorePath, dict[StorePath, bytes]], tmp_path: Path
) -> None:
    """The paths are content-addressed (trusted unsigned) but for one leaf whose narinfo lost its
    `CA:`; signatures are required: the copy is refused naming it, its NAR was never requested
    (others may have been, fetched ahead) and nothing was added."""
    server, root, texts = cache
    victim = sorted(p for p in texts if p.name == "leaf-7")[0]
    file = server.root / f"{victim.hash_part}.narinfo"
    file.write_text("".join(x for x in file.read_text().splitlines(True) if not x.startswith("CA:")))
    with open_store(f"file://{server.root}?store={STORE_DIR}") as files:
        url = f"/{files.lookup_narinfo(victim).url}"  # type: ignore[attr-defined]
    dst = local(tmp_path / "dst")
    with open_store(server.url()) as src, pytest.raises(SignatureError, match="lacks a valid signature") as e:
        copy_closure(src, dst, [root], policy=SignaturePolicy())
    assert str(victim) in str(e.value)
    assert url not in nar_names(server)
    assert dst.query_all_valid_paths() == set()
    assert not [n for n in os.listdir(tmp_path / "dst" / "store") if n != ".links"]
    dst.close()
