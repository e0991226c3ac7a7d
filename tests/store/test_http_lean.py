"""The event loop's own HTTP/1.1 client for http:// caches (`http_lean.LeanHttp`) against scripted
servers on 127.0.0.1: what it answers itself (a whole body, a missing file, a cut one to resume) and
what it hands to the synchronous client (`FALLBACK`: redirects, other statuses, unframed bodies, a
refused connection), a kept-alive connection closed while idle, silences, and its connection bound.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from storekit.errors import SubstituteError
from storekit.store.http_async import FALLBACK, Partial, Whole
from storekit.store.http_lean import LeanHttp
from storekit.store.transport import HttpTransport
from tests.scripted_http import CLOSE, STALL, read_request, scripted_servers


def ok(body: bytes, *extra: str) -> bytes:
    headers = "".join(f"{h}\r\n" for h in extra)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


@pytest.fixture
def serve() -> Iterator[object]:
    yield from scripted_servers()


def client(url: str, *, read_timeout: float = 5.0, connections: int = 4) -> LeanHttp:
    return LeanHttp(url, connect_timeout=5.0, read_timeout=read_timeout, connections=connections)


def get(http: LeanHttp, url: str, limit: int = 1 << 20) -> object:
    return http.submit(http.get(url, limit)).result(30)


def test_a_kept_alive_connection_answers_several_requests(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([ok(b"one", 'ETag: "e1"'), ok(b"two", "Content-Encoding: br"), ok(b"three")])
    http = client(server.url)
    try:
        assert get(http, f"{server.url}/a.narinfo") == Whole(b"one", None, '"e1"')
        assert get(http, f"{server.url}/nar/b%2Bc.nar") == Whole(b"two", "br", None)
        assert get(http, f"{server.url}/c") == Whole(b"three", None, None)
    finally:
        http.close()
    assert server.connections == 1
    assert [r.split(b"\r\n")[0] for r in server.requests] == [
        b"GET /a.narinfo HTTP/1.1",
        b"GET /nar/b%2Bc.nar HTTP/1.1",
        b"GET /c HTTP/1.1",
    ]
    assert f"host: 127.0.0.1:{server.port}".encode() in server.requests[0].lower()


def test_missing_files_are_none_and_the_connection_stays_in_step(serve) -> None:  # type: ignore[no-untyped-def]
    missing = [f"HTTP/1.1 {s} No\r\nContent-Length: 4\r\n\r\nnope".encode() for s in (404, 403, 410)]
    server = serve([*missing, ok(b"found")])
    http = client(server.url)
    try:
        assert [get(http, f"{server.url}/x") for _ in missing] == [None, None, None]
        assert get(http, f"{server.url}/y") == Whole(b"found", None, None)
    finally:
        http.close()
    assert server.connections == 1


def test_a_chunked_body_is_read_whole(serve) -> None:  # type: ignore[no-untyped-def]
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    server = serve([chunked, ok(b"after")])
    http = client(server.url)
    try:
        assert get(http, f"{server.url}/x") == Whole(b"hello world", None, None)
        assert get(http, f"{server.url}/y") == Whole(b"after", None, None)
    finally:
        http.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\nbad",
        b"HTTP/1.1 200 OK\r\n\r\nup to the end of the connection" + CLOSE,
        b"this is not HTTP\r\n\r\n",
    ],
    ids=["redirect", "500", "unframed-body", "garbage"],
)
def test_what_is_not_plain_goes_to_the_synchronous_client(serve, answer: bytes) -> None:  # type: ignore[no-untyped-def]
    server = serve([answer])
    http = client(server.url)
    try:
        assert get(http, f"{server.url}/x") is FALLBACK
    finally:
        http.close()


def test_another_origin_goes_to_the_synchronous_client(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([])
    http = client(server.url)
    try:
        assert get(http, f"http://127.0.0.2:{server.port}/x") is FALLBACK
        assert server.requests == []
    finally:
        http.close()


def test_a_body_cut_midway_is_partial_to_resume(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: "v1"\r\n\r\nonly this' + CLOSE])
    http = client(server.url)
    try:
        answer = get(http, f"{server.url}/nar/x.nar")
    finally:
        http.close()
    assert isinstance(answer, Partial)
    assert (answer.data, answer.size, answer.validator) == (b"only this", 100, '"v1"')
    assert "closed at byte 9 of 100" in answer.cause


def test_a_body_longer_than_the_limit_is_cut_at_the_limit(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([ok(b"x" * 1000), ok(b"next")], [ok(b"next")])
    http = client(server.url)
    try:
        assert get(http, f"{server.url}/big", limit=11) == Whole(b"x" * 11, None, None)
        assert get(http, f"{server.url}/y") == Whole(b"next", None, None)  # on a new connection
    finally:
        http.close()
    assert server.connections == 2


def test_a_connection_closed_while_idle_is_asked_again_on_a_new_one(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([ok(b"first"), None], [ok(b"second")])
    http = client(server.url)
    try:
        assert get(http, f"{server.url}/a") == Whole(b"first", None, None)
        assert get(http, f"{server.url}/b") == Whole(b"second", None, None)
    finally:
        http.close()
    assert [r.split(b" ")[1] for r in server.requests] == [b"/a", b"/b", b"/b"]


def test_a_fresh_connection_closed_without_an_answer_goes_to_the_synchronous_client(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([None])
    http = client(server.url)
    try:
        assert get(http, f"{server.url}/a") is FALLBACK
    finally:
        http.close()
    assert server.connections == 1


def test_a_silence_before_the_answer_goes_to_the_synchronous_client(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve([STALL])
    http = client(server.url, read_timeout=0.3)
    try:
        assert get(http, f"{server.url}/a") is FALLBACK
    finally:
        http.close()


def test_a_silence_midway_is_partial_and_says_so() -> None:
    """The headers and 20 of 50 bytes, then nothing: after the read timeout, what came is kept."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nLast-Modified: Mon, 07 Dec 2026 08:00:00 GMT\r\n\r\n"
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    hang = threading.Event()

    def stall() -> None:
        conn, _ = sock.accept()
        with conn:
            read_request(conn.makefile("rb"))
            conn.sendall(head + b"twenty bytes of body")
            hang.wait(10)

    threading.Thread(target=stall, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    http = client(url, read_timeout=0.3)
    try:
        answer = get(http, f"{url}/nar/x")
    finally:
        hang.set()
        http.close()
        sock.close()
    assert isinstance(answer, Partial)
    assert answer.data == b"twenty bytes of body" and answer.size == 50
    assert answer.validator == "Mon, 07 Dec 2026 08:00:00 GMT"
    assert "sent nothing for 0.3 s (read timeout)" in answer.cause


def test_a_refused_connection_goes_to_the_synchronous_client() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    http = client(f"http://127.0.0.1:{port}")
    try:
        assert get(http, f"http://127.0.0.1:{port}/x") is FALLBACK
    finally:
        http.close()


def test_a_connect_timeout_is_reported_at_once() -> None:
    """A listener whose accept queue is full: connections hang in SYN, the connect timeout runs out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(0.1)
    url = f"http://127.0.0.1:{port}"
    http = LeanHttp(url, connect_timeout=0.3, read_timeout=5.0, connections=1)
    try:
        with pytest.raises(SubstituteError, match=r"connect timeout of 0\.3 s"):
            get(http, f"{url}/x")
    finally:
        http.close()
        for s in fillers:
            s.close()
        listener.close()


def test_requests_in_flight_are_bounded_by_the_connections(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(*([ok(b"x")] * 30 for _ in range(3)))
    http = client(server.url, connections=3)

    async def many() -> list[object]:
        return list(await asyncio.gather(*(http.get(f"{server.url}/{i}", 100) for i in range(30))))

    try:
        answers = http.submit(many()).result(30)
    finally:
        http.close()
    assert answers == [Whole(b"x", None, None)] * 30
    assert server.connections == 3


def test_http_caches_use_it_and_https_ones_aiohttp() -> None:
    from storekit.store.http_async import AsyncHttp

    plain, tls = HttpTransport("http://127.0.0.1:1"), HttpTransport("https://127.0.0.1:1")
    try:
        assert type(plain.fast) is LeanHttp
        assert type(tls.fast) is AsyncHttp
    finally:
        plain.close()
        tls.close()
