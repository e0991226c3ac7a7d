"""One blocking HTTP/1.1 GET for `builtin:fetchurl`: redirects, proxies, https, the body read as a file.

`urllib.request` did this, and a fetching build paid for importing it: `http.client` with the
`email` package it parses headers with, and `ssl` even for an `http://` URL, more than the rest of
the build's start-up. Here a request is a socket, one formatted request, and llhttp (through
httptools, which the cache client uses too) framing the answer; `ssl` is imported for an https URL
or tunnel only. What the download needs and no more:

- `GET` with `Connection: close`, one request per connection (a fetch is one large answer);
- redirects (301, 302, 303, 307, 308), relative ones too, at most `MAX_REDIRECTS` as curl in Nix;
- an `http` proxy for http URLs (the absolute URL in the request line) and a `CONNECT` tunnel for
  https ones, with basic auth from the proxy URL's user info; `no_proxy` is the caller's (fetchurl);
- TLS without verification, as Nix's fetchurl: the fixed-output hash is what is trusted;
- a body framed by `Content-Length`, chunked, or by the end of the connection; one cut short of
  its length raises `DownloadError` instead of passing for the whole file.
"""

from __future__ import annotations

import socket
import urllib.parse

import httptools

from storekit.errors import StorekitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_READ = 1 << 16
_AGENT = "storekit (builtin:fetchurl)"


class DownloadError(StorekitError):
    """The server, a proxy or the connection did not give the file; the message says which and why."""


class HttpStatusError(DownloadError):
    """The final answer was not a success (`status`, `reason`)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP error {status} ({reason})")
        self.status = status
        self.reason = reason


def get(url: str, proxies: Mapping[str, str], timeout: float) -> Response:
    """The answer to `GET url` after redirects, its headers read; `proxies` maps `http`/`https` to a
    proxy URL (already filtered for `no_proxy`). `DownloadError` when there is no successful answer."""
    for _ in range(MAX_REDIRECTS + 1):
        response = _request(url, proxies.get(urllib.parse.urlsplit(url).scheme.lower()), timeout)
        location = response.headers.get("location")
        if response.status in _REDIRECTS and location:
            response.close()
            url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
                raise DownloadError(f"redirected to '{url}', which is not http or https")
            continue
        if not 200 <= response.status < 300:
            response.close()
            raise HttpStatusError(response.status, response.reason)
        return response
    raise DownloadError(f"more than {MAX_REDIRECTS} redirects")


def _request(url: str, proxy: str | None, timeout: float) -> Response:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host:
        raise DownloadError(f"'{url}' names no host")
    port = parts.port or (443 if scheme == "https" else 80)
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    headers = {"Host": _authority(host, parts.port), "User-Agent": _AGENT, "Accept": "*/*"}
    if parts.username is not None:
        headers["Authorization"] = _basic(parts.username, parts.password)
    if proxy is None:
        sock = _connect(host, port, timeout, what=f"'{host}:{port}'")
    else:
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if not p.hostname:
            raise DownloadError(f"the proxy '{proxy}' names no host")
        auth = _basic(p.username, p.password) if p.username is not None else None
        sock = _connect(p.hostname, p.port or 80, timeout, what=f"the proxy '{p.hostname}:{p.port or 80}'")
        if scheme == "https":
            _tunnel(sock, f"{_authority(host, port)}", auth, proxy)
        else:
            target = urllib.parse.urlunsplit(
                (scheme, parts.netloc.rsplit("@", 1)[-1], parts.path or "/", parts.query, "")
            )
            if auth is not None:
                headers["Proxy-Authorization"] = auth
    if scheme == "https":
        sock = _tls(sock, host)
    lines = [
        f"GET {target} HTTP/1.1",
        *(f"{k}: {v}" for k, v in headers.items()),
        "Connection: close",
        "",
        "",
    ]
    try:
        sock.sendall("\r\n".join(lines).encode("latin-1"))
        return Response(sock, url)
    except BaseException:
        sock.close()
        raise


def _authority(host: str, port: int | None) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


def _basic(user: str | None, password: str | None) -> str:
    import base64

    pair = f"{urllib.parse.unquote(user or '')}:{urllib.parse.unquote(password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def _connect(host: str, port: int, timeout: float, *, what: str) -> socket.socket:
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise DownloadError(f"cannot connect to {what}: {e.strerror or e}") from e


def _tunnel(sock: socket.socket, authority: str, auth: str | None, proxy: str) -> None:
    """`CONNECT` through the proxy; the socket then carries the TLS session to the server."""
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", f"User-Agent: {_AGENT}"]
    if auth is not None:
        lines.append(f"Proxy-Authorization: {auth}")
    try:
        sock.sendall("\r\n".join([*lines, "", ""]).encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:  # the proxy's answer has no body when it agrees
            data = sock.recv(1)
            if not data:
                raise DownloadError(f"the proxy '{proxy}' closed the connection instead of answering CONNECT")
            head += data
    except BaseException:
        sock.close()
        raise
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[1].startswith("2"):
        sock.close()
        raise DownloadError(f"the proxy '{proxy}' refused to tunnel to {authority}: {status_line}")


def _tls(sock: socket.socket, host: str) -> socket.socket:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA bundle loaded: nothing is verified
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # as Nix: the fixed-output hash is what is trusted
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, OSError) as e:
        sock.close()
        raise DownloadError(f"TLS with '{host}' failed: {e}") from e


class Response:
    """An answer whose headers are read; `read` gives the body, `close` drops the connection."""

    def __init__(self, sock: socket.socket, url: str) -> None:
        self._sock = sock
        self.url = url
        self.headers: dict[str, str] = {}
        self.reason = ""
        self._parts: list[bytes] = []
        self._buffered = 0  # bytes in _parts
        self._received = 0  # bytes of the body so far
        self._headers_done = False
        self._complete = False
        self._eof = False
        self._parser = httptools.HttpResponseParser(self)
        while not self._headers_done:
            if not self._fill():
                raise DownloadError(f"'{url}': the connection closed before the answer's headers")
        self.status: int = self._parser.get_status_code()

    # --- llhttp's callbacks ---------------------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason = status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._parts.append(body)
        self._buffered += len(body)
        self._received += len(body)

    def on_message_complete(self) -> None:
        self._complete = True

    # --- reading --------------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Feed the parser what the socket has; False at the end of the connection."""
        if self._eof:
            return False
        try:
            data = self._sock.recv(_READ)
        except TimeoutError as e:
            raise DownloadError(f"'{self.url}': no data for too long (timed out)") from e
        except OSError as e:
            raise DownloadError(f"'{self.url}': the connection broke: {e.strerror or e}") from e
        if not data:
            self._eof = True
            return False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            raise DownloadError(f"'{self.url}': the server switched protocols") from e
        except httptools.HttpParserError as e:
            raise DownloadError(f"'{self.url}': not an HTTP answer ({e})") from e
        return True

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes of the body (all that is left when negative); b"" once it has ended."""
        while not self._complete and (size < 0 or self._buffered < size):
            if not self._fill():
                self._check_whole()
                break
        if size < 0 or size >= self._buffered:
            data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._parts, self._buffered = [], 0
            return data
        joined = b"".join(self._parts)
        self._parts, self._buffered = [joined[size:]], len(joined) - size
        return joined[:size]

    def _check_whole(self) -> None:
        """At the end of the connection: a body with a length or chunks must have been complete."""
        length = self.headers.get("content-length")
        if length is not None:
            raise DownloadError(f"'{self.url}': the connection closed at byte {self._received} of {length}")
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            raise DownloadError(f"'{self.url}': the connection closed before the last chunk")
        self._complete = True  # delimited by the end of the connection, as HTTP/1.0 bodies are

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
