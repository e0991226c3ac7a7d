"""`builtin:fetchurl`'s HTTP client (`realise.download`) against scripted servers on 127.0.0.1: bodies
framed each way HTTP frames them and one cut short, redirects, error statuses, a silent server, an
http proxy with basic auth, and an https download tunnelled through a `CONNECT` proxy to a TLS server.
The whole builds through it are in test_fetchurl.py and, against Nix, test_fetchurl_interop.py."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fetch_server import self_signed, serve

from storekit.realise.download import MAX_REDIRECTS, DownloadError, HttpStatusError, get
from storekit.realise.fetchurl import _bypassed, _proxies_for
from tests.scripted_http import CLOSE, STALL, ScriptedServer, scripted_servers

BODY = bytes(range(256)) * 1000


def answer(status: str, body: bytes = b"", *headers: str, length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int = 7000) -> bytes:
    parts = [
        f"{len(body[i : i + size]):x}\r\n".encode() + body[i : i + size] + b"\r\n"
        for i in range(0, len(body), size)
    ]
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(parts) + b"0\r\n\r\n"


Start = Callable[..., ScriptedServer]


@pytest.fixture
def start() -> Iterator[object]:
    yield from scripted_servers()


def read_all(url: str, proxies: dict[str, str] | None = None, timeout: float = 10.0) -> bytes:
    with get(url, proxies or {}, timeout) as response:
        parts = []
        while chunk := response.read(5000):
            parts.append(chunk)
        assert response.read(10) == b""  # and it stays ended
        return b"".join(parts)


@pytest.mark.parametrize(
    "framing",
    [
        answer("200 OK", BODY),
        chunked(BODY),
        answer("200 OK", BODY, length=False) + CLOSE,  # the end of the connection ends it
    ],
    ids=["content-length", "chunked", "until-close"],
)
def test_each_framing_gives_the_whole_body(start: Start, framing: bytes) -> None:
    server = start([framing])
    assert read_all(f"{server.url}/f") == BODY
    request = server.requests[0].decode()
    assert request.startswith("GET /f HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in request and "Connection: close\r\n" in request


def test_a_body_cut_short_is_refused(start: Start) -> None:
    server = start([answer("200 OK", BODY)[:-1000] + CLOSE])
    with pytest.raises(DownloadError, match=f"closed at byte {len(BODY) - 1000} of {len(BODY)}"):
        read_all(f"{server.url}/f")
    cut = chunked(BODY)
    server = start([cut[: len(cut) // 2] + CLOSE])
    with pytest.raises(DownloadError, match="before the last chunk"):
        read_all(f"{server.url}/f")


def test_redirects_are_followed_relative_and_absolute(start: Start) -> None:
    final = start([answer("200 OK", BODY)])
    first = start(
        [answer("302 Found", b"", "Location: /moved?x=1")],
        [answer("301 Moved Permanently", b"", f"Location: {final.url}/there")],
    )
    assert read_all(f"{first.url}/here") == BODY
    assert [r.split(b"\r\n")[0] for r in first.requests] == [
        b"GET /here HTTP/1.1",
        b"GET /moved?x=1 HTTP/1.1",
    ]
    assert final.requests[0].startswith(b"GET /there HTTP/1.1")


def test_endless_redirects_and_error_statuses_are_refused(start: Start) -> None:
    loop = start(*[[answer("307 Temporary Redirect", b"", "Location: /again")]] * (MAX_REDIRECTS + 1))
    with pytest.raises(DownloadError, match=f"more than {MAX_REDIRECTS} redirects"):
        read_all(f"{loop.url}/again")
    assert len(loop.requests) == MAX_REDIRECTS + 1
    missing = start([answer("404 Not Found", b"no such file")])
    with pytest.raises(HttpStatusError, match=r"HTTP error 404 \(Not Found\)") as info:
        read_all(f"{missing.url}/gone")
    assert info.value.status == 404


def test_a_silent_server_times_out(start: Start) -> None:
    server = start([STALL])
    with pytest.raises(DownloadError, match="timed out"):
        read_all(f"{server.url}/f", timeout=0.5)
    with socket.socket() as s:  # nothing listens on a port just freed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=f"cannot connect to '127.0.0.1:{port}'"):
        read_all(f"http://127.0.0.1:{port}/f")


def test_an_http_url_goes_to_the_proxy_in_absolute_form_with_its_auth(start: Start) -> None:
    proxy = start([answer("200 OK", BODY)])
    url = "http://origin.invalid:8080/dir/f?v=2"
    assert read_all(url, {"http": f"http://user:p%40ss@127.0.0.1:{proxy.port}"}) == BODY
    request = proxy.requests[0].decode()
    assert request.startswith(f"GET {url} HTTP/1.1\r\n")
    assert "Host: origin.invalid:8080\r\n" in request
    assert f"Proxy-Authorization: Basic {base64.b64encode(b'user:p@ss').decode()}\r\n" in request


def test_an_https_url_is_tunnelled_through_the_proxy(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    root.mkdir()
    (root / "f").write_bytes(BODY)
    with serve(root, tls=self_signed(tmp_path)) as (base, hits), _connect_proxy() as (proxy, asked):
        assert read_all(f"{base}/f", {"https": proxy}) == BODY
    assert hits == ["/f"]
    assert asked == [f"CONNECT {base.removeprefix('https://')} HTTP/1.1"]


def test_no_proxy_rules() -> None:
    assert _bypassed("a.example.org", "example.org")
    assert _bypassed("a.example.org", "other, .example.org")
    assert _bypassed("example.org", "example.org:8080")
    assert _bypassed("anything", "*")
    assert _bypassed("::1", "[::1]:80")
    assert not _bypassed("badexample.org", "example.org")
    assert not _bypassed("example.org", "")
    proxies = {"http_proxy": "http://p:3128", "all_proxy": "http://all:1", "no_proxy": "localhost"}
    assert _proxies_for("http://a/b", proxies) == {"http": "http://p:3128", "https": "http://all:1"}
    assert _proxies_for("https://localhost/b", proxies) == {}


class _Tunnel:
    """A `CONNECT`-only proxy: records each request line, then pipes bytes both ways."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.asked: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(1)
        line = head.split(b"\r\n", 1)[0].decode()
        self.asked.append(line)
        host, port = line.split()[1].rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for a, b in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def _connect_proxy() -> Iterator[tuple[str, list[str]]]:
    tunnel = _Tunnel()
    try:
        yield f"http://127.0.0.1:{tunnel.sock.getsockname()[1]}", tunnel.asked
    finally:
        tunnel.sock.close()
