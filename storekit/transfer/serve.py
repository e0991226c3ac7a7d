"""`storekit cache serve`: any store served over HTTP as a Nix binary cache (like nix-serve).

Routes: `/nix-cache-info`, `/<hashpart>.narinfo`, `/nar/<hashpart>-<nar hash>.nar[.xz]`. A NAR's URL
names the path and its NAR hash, so the server needs no state: it looks the path up, checks the hash
is still the one it advertised, and streams `dump_path` output straight to the socket (uncompressed
with a `Content-Length`, or xz with chunked encoding). Narinfos are signed on the fly when a secret key
is given. It binds to 127.0.0.1 unless told otherwise: serving a store to a network is a decision.

A storekit extension, given a `relocator` (`cache serve --relocate-from`): `GET /relocate/<hash part>`
relocates the closure of the upstream path with that hash part and answers its new store path as
text (404: the upstream lacks it; 500: refused, the reason in the body and the server's log). Real
Nix never calls it; it is how a client learns a content-addressed name it cannot compute itself.
"""

from __future__ import annotations

import lzma
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from storekit.errors import StorekitError
from storekit.narinfo import NarInfo, NixCacheInfo
from storekit.signing import SecretKey
from storekit.store.base import Store, ValidPathInfo
from storekit.storepath import StorePath

COMPRESSIONS = ("none", "xz")
_NARINFO = re.compile(r"^/([0-9a-df-np-sv-z]{32})\.narinfo$")
_RELOCATE = re.compile(r"^/relocate/([0-9a-df-np-sv-z]{32})$")
_NAR = re.compile(r"^/nar/([0-9a-df-np-sv-z]{32})-([0-9a-df-np-sv-z]{52})\.nar(\.xz)?$")


class CacheServer(ThreadingHTTPServer):
    """A threading HTTP server over one store; `url` is where it listens (port 0 picks a free one)."""

    daemon_threads = True

    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        compression: str = "none",
        secret_keys: Iterable[SecretKey] = (),
        priority: int = 30,
        relocator: Callable[[str], StorePath | None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if compression not in COMPRESSIONS:
            raise StorekitError(f"cache serve: compression must be one of {', '.join(COMPRESSIONS)}")
        self.store = store
        self.compression = compression
        self.secret_keys = tuple(secret_keys)
        self.cache_info = NixCacheInfo(store.store_dir.path, want_mass_query=True, priority=priority)
        self.relocator = relocator
        self.log = log
        self.store_lock = threading.Lock()  # one store handle (one SQLite connection) for all threads
        try:
            super().__init__((host, port), _Handler)
        except OSError as e:
            raise StorekitError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away mid-answer is one log line, not a traceback; anything else is a bug."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):  # BrokenPipeError, ConnectionResetError, ...
            if self.log is not None:
                host, port = client_address[:2]  # type: ignore[index]
                self.log(f"client {host}:{port} disconnected before the answer was sent ({error.strerror})")
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def narinfo(self, hash_part: str) -> NarInfo | None:
        with self.store_lock:
            path = self.store.query_path_from_hash_part(hash_part)
            info = None if path is None else self.store.lookup_path_info(path)
        return None if info is None else self._narinfo_of(info)

    def _narinfo_of(self, info: ValidPathInfo) -> NarInfo:
        xz = self.compression == "xz"
        narinfo = NarInfo(
            store_path=info.path,
            url=f"nar/{info.path.hash_part}-{info.nar_hash.nix32}.nar" + (".xz" if xz else ""),
            nar_hash=info.nar_hash,
            nar_size=info.nar_size,
            compression=self.compression,
            file_hash=None if xz else info.nar_hash,
            file_size=0 if xz else info.nar_size,
            references=tuple(sorted(r.base_name for r in info.references)),
            deriver=info.deriver.base_name if info.deriver else None,
            sigs=tuple(sorted(info.sigs | {k.sign(info.fingerprint()) for k in self.secret_keys})),
            ca=info.ca,
        )
        return narinfo

    def relocated(self, hash_part: str) -> StorePath | None:
        """`/relocate/<hash part>`: the new path of that upstream path (None: no relocator, or unknown)."""
        if self.relocator is None:
            return None
        with self.store_lock:
            return self.relocator(hash_part)

    def nar(self, hash_part: str, nar_hash: str) -> tuple[int, Iterator[bytes]] | None:
        """(NAR size, chunks) of the path with this hash part, if its NAR hash is still `nar_hash`."""
        with self.store_lock:
            path = self.store.query_path_from_hash_part(hash_part)
            info = None if path is None else self.store.lookup_path_info(path)
            if info is None or info.nar_hash.nix32 != nar_hash:
                return None
            return info.nar_size, self.store.nar_from_path(info.path)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CacheServer

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a substituter asks for many missing narinfos, each a 404 that is no news."""

    def _respond(self, *, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/nix-cache-info":
                return self._text(self.server.cache_info.to_text(), "text/x-nix-cache-info", head)
            if m := _NARINFO.match(path):
                narinfo = self.server.narinfo(m.group(1))
                if narinfo is not None:
                    return self._text(narinfo.to_text(), "text/x-nix-narinfo", head)
            elif (m := _NAR.match(path)) and bool(m.group(3)) == (self.server.compression == "xz"):
                found = self.server.nar(m.group(1), m.group(2))
                if found is not None:
                    return self._nar(*found, head=head)
            elif m := _RELOCATE.match(path):
                new = self.server.relocated(m.group(1))
                if new is not None:
                    return self._text(f"{new}\n", "text/plain", head)
        except StorekitError as e:
            if self.server.log is not None:
                self.server.log(f"{self.command} {path}: {e}")
            return self._text(f"{e}\n", "text/plain", head, status=500)
        self._text("not found\n", "text/plain", head, status=404)

    def _text(self, text: str, content_type: str, head: bool, status: int = 200) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _nar(self, size: int, chunks: Iterator[bytes], *, head: bool) -> None:
        xz = self.server.compression == "xz"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-nix-nar")
        if xz:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if head:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            return
        try:
            if xz:
                self._send_xz(chunks)
            else:
                for chunk in chunks:
                    self.wfile.write(chunk)
        except (ConnectionError, StorekitError) as e:
            # the status line is gone: closing early is how the client learns the body is incomplete
            self.close_connection = True
            if self.server.log is not None:
                why = f"client disconnected ({e.strerror})" if isinstance(e, ConnectionError) else str(e)
                self.server.log(f"{self.command} {self.path}: answer cut short: {why}")

    def _send_xz(self, chunks: Iterator[bytes]) -> None:
        compressor = lzma.LZMACompressor(lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=6)
        for chunk in chunks:
            self._send_chunk(compressor.compress(chunk))
        self._send_chunk(compressor.flush())
        self.wfile.write(b"0\r\n\r\n")

    def _send_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
