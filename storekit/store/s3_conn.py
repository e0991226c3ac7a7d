"""HTTP/1.1 for S3's small requests: kept-alive sockets, the exchange read with a few C-level calls.

Why not urllib3 or http.client here: a push or substitution of 1,000 small paths is 2,000 requests
whose bodies are a few hundred bytes, and per request http.client parses the headers with the
`email` package and urllib3 wraps every step in Python layers: measured, about two thirds of the
client's CPU for such a copy. S3's answers are plain (`Content-Length` bodies, or chunked ones),
so this module writes a request with one `sendall` and reads the answer with `readline`/`read` of
a buffered socket file.

A connection taken from the pool may have been closed by the server meanwhile; a request that fails
on a reused connection before any byte of the answer arrived is sent once more on a new one (S3's
requests here are idempotent), so an idle timeout never surfaces as an error.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Mapping
from typing import IO

#: The largest answer head (status line and headers) accepted.
MAX_HEAD = 64 << 10
BLOCK = 64 << 10

Body = bytes | IO[bytes] | None


class BrokenAnswer(ConnectionError):
    """The server's answer was cut short or malformed (an `OSError`: callers retry or resume on it)."""


class Answer:
    """One answer: `status`, `reason`, `headers` (lower-case names) and its body, read by `read`."""

    data = b""  # the whole body, once `S3Http` read it

    def __init__(
        self, pool: Pool, conn: _Conn, status: int, reason: str, headers: dict[str, str], bodiless: bool
    ) -> None:
        self.status, self.reason, self.headers = status, reason, headers
        self._pool = pool
        self._conn: _Conn | None = conn
        self._chunked = not bodiless and "chunked" in headers.get("transfer-encoding", "").lower()
        length = "0" if bodiless else headers.get("content-length")
        self._left: int | None = int(length) if length is not None and length.isdigit() else None
        self._chunk_left = 0
        self._done = self._left == 0 and not self._chunked
        self._keep = headers.get("connection", "").lower() != "close"

    @property
    def done(self) -> bool:
        """Whether the body was read to its end."""
        return self._done

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of the body (all of it for -1); b"" at its end."""
        if self._done or self._conn is None:
            return b""
        try:
            data = self._read_chunked(size) if self._chunked else self._read_plain(size)
        except BaseException:
            self._drop()
            raise
        if self._done:
            self._release()
        return data

    def _read_plain(self, size: int) -> bytes:
        assert self._conn is not None
        if self._left is None:  # no length: the body runs to the connection's end
            data = self._conn.file.read() if size < 0 else self._conn.file.read1(size)
            self._keep = False
            self._done = not data
            return data
        want = self._left if size < 0 else min(size, self._left)
        data = self._conn.file.read(want) if size < 0 else self._conn.file.read1(want) if want else b""
        if len(data) < want if size < 0 else want and not data:
            raise BrokenAnswer(f"the connection closed, {self._left - len(data)} bytes of the body unread")
        self._left -= len(data)
        self._done = self._left == 0
        return data

    def _read_chunked(self, size: int) -> bytes:
        assert self._conn is not None
        parts: list[bytes] = []
        wanted = size
        while wanted != 0:
            if self._chunk_left == 0:
                line = self._conn.file.readline(MAX_HEAD)
                if not line:
                    raise BrokenAnswer("the connection closed inside a chunked body")
                self._chunk_left = int(line.split(b";", 1)[0].strip() or b"x", 16)
                if self._chunk_left == 0:  # the last chunk: trailers up to an empty line
                    while self._conn.file.readline(MAX_HEAD) not in (b"\r\n", b"\n", b""):
                        pass
                    self._done = True
                    break
            n = self._chunk_left if wanted < 0 else min(wanted, self._chunk_left)
            data = self._conn.file.read(n)
            if len(data) < n:
                raise BrokenAnswer("the connection closed inside a chunk")
            self._chunk_left -= n
            if self._chunk_left == 0:
                self._conn.file.readline(MAX_HEAD)  # the CRLF after a chunk
            parts.append(data)
            if wanted > 0:
                wanted -= n
                break  # one chunk's worth per call is enough for a stream
        return b"".join(parts)

    def release(self) -> None:
        """Done with this answer: its connection goes back to the pool if the body was read to the end."""
        if self._done:
            self._release()
        else:
            self._drop()

    close = release

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.put(conn) if self._keep else conn.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file: io.BufferedReader = sock.makefile("rb", BLOCK)  # type: ignore[assignment]
        self.reused = False

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class Pool:
    """Kept-alive connections to one host (`https` wraps them in TLS), shared by threads."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        connect_timeout: float,
        read_timeout: float,
        ca_certs: str | None = None,
        keep: int = 32,
    ) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._keep = keep
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()
        self._tls = None
        if scheme == "https":
            import ssl

            self._tls = ssl.create_default_context(cafile=ca_certs)

    def _connect(self) -> _Conn:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.read_timeout)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        return _Conn(sock)

    def put(self, conn: _Conn) -> None:
        conn.reused = True
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        conn.close()

    def _take(self) -> _Conn:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def exchange(self, method: str, target: str, headers: Mapping[str, str], body: Body) -> Answer:
        """Send one request and read the answer's head; its body is left to `Answer.read`."""
        while True:
            conn = self._take()
            try:
                return self._exchange(conn, method, target, headers, body)
            except ConnectionError as e:  # BrokenAnswer included
                conn.close()
                if not (conn.reused and getattr(e, "before_answer", False)):
                    raise
                if body is not None and not isinstance(body, bytes):
                    body.seek(getattr(e, "body_start", 0))
            except BaseException:
                conn.close()
                raise

    def _exchange(
        self,
        conn: _Conn,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | IO[bytes] | None,
    ) -> Answer:
        lines = [f"{method} {target} HTTP/1.1"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        if body is not None and "content-length" not in headers:
            size = len(body) if isinstance(body, bytes) else None
            if size is None:
                raise ValueError("a file body needs a content-length header")
            lines.append(f"content-length: {size}")
        elif body is None and method in ("PUT", "POST"):
            lines.append("content-length: 0")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        start = 0 if body is None or isinstance(body, bytes) else body.tell()
        try:
            if isinstance(body, bytes):
                conn.sock.sendall(head + body if len(body) <= BLOCK else head)
                if len(body) > BLOCK:
                    conn.sock.sendall(body)
            else:
                conn.sock.sendall(head)
                if body is not None:
                    while block := body.read(BLOCK):
                        conn.sock.sendall(block)
            status_line = conn.file.readline(MAX_HEAD)
        except ConnectionError as e:
            e.before_answer = True  # type: ignore[attr-defined]
            e.body_start = start  # type: ignore[attr-defined]
            raise
        if not status_line:
            error = BrokenAnswer("the server closed the connection without answering")
            error.before_answer = True  # type: ignore[attr-defined]
            error.body_start = start  # type: ignore[attr-defined]
            raise error
        parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise BrokenAnswer(f"not an HTTP answer: {status_line[:80]!r}")
        answer_headers: dict[str, str] = {}
        while True:
            line = conn.file.readline(MAX_HEAD)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise BrokenAnswer("the connection closed inside the answer's headers")
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                answer_headers[name.strip().lower()] = value.strip()
        bodiless = method == "HEAD" or parts[1] in ("204", "304")
        answer = Answer(
            self, conn, int(parts[1]), parts[2] if len(parts) > 2 else "", answer_headers, bodiless
        )
        if answer.done:
            answer.release()
        return answer
