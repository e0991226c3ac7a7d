"""Where a binary cache's files are: a directory (`file://`) or a web server (`http(s)://`).

A transport moves named files (`nix-cache-info`, `<hash>.narinfo`, `nar/…`) and knows no Nix format.
Reads stream, so a NAR of any size costs constant memory, and a download that ends before its
announced length raises instead of passing for a short file. Writes go to a temp name in the same
directory and are renamed, so a reader (real Nix included) never sees half a file. Only the
directory or host the user named is ever contacted.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from storekit.errors import StoreError, SubstituteError

if TYPE_CHECKING:
    import asyncio

    from storekit.store.http_async import AsyncHttp
    from storekit.store.http_client import HttpClient, ResumingBody

#: HTTP statuses that mean "no such file" (Nix treats 403 like 404: S3 answers 403 for missing keys).
_MISSING = (403, 404, 410)
TIMEOUT_S = 60.0
#: The largest "small" file (`nix-cache-info`, a narinfo, a realisation) read whole into memory: real
#: ones are a few KiB, so a cache answering gigabytes is refused instead of exhausting memory.
MAX_SMALL_FILE = 16 << 20


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_BAD_CHAR = re.compile(r"[\\\x00-\x1f\x7f]")


def name_problem(name: str) -> str | None:
    """Why `name` (a narinfo's `URL`, say) would lead outside the cache, or None when it stays inside.

    Inside means relative, without `.`/`..`/empty components, no scheme (Nix follows an absolute
    `http://…` URL in a narinfo to another host; storekit does not), no backslash or control bytes.
    """
    if not name:
        return "it is empty"
    if name.startswith("/"):
        return "it is an absolute path"
    if _SCHEME.match(name) or "//" in name:
        return "it names another location (a scheme or host)"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "it has an empty, '.' or '..' component"
    if _BAD_CHAR.search(name):
        return "it contains a backslash or a control character"
    return None


def check_name(name: str, uri: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        raise SubstituteError(f"binary cache '{uri}': refusing file name {name!r}: {problem}")
    return name


class TruncatedDownload(SubstituteError):
    """A file that ended before the length its server or narinfo announced."""


class Download(io.RawIOBase):
    """A readable stream of one remote file that raises `TruncatedDownload` when it ends early."""

    def __init__(self, raw: BinaryIO, expected: int | None, where: str, whole: bytes | None = None) -> None:
        super().__init__()
        self._raw = raw
        self.expected = expected
        self.where = where
        self.received = 0
        #: All of the file, when it was received whole into memory (`raw` reads the same bytes): a
        #: reader may take it at once (`compression.decode_whole`) instead of streaming it.
        self.whole = whole

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        try:
            n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        except Exception as e:
            if not _broken_transfer(e):
                raise
            raise TruncatedDownload(
                f"download of '{self.where}' failed after {self.received} bytes: {e}"
            ) from e
        if not n:
            self._check_complete()
            return 0
        self.received += n
        if self.expected is not None and self.received > self.expected:
            raise SubstituteError(
                f"download of '{self.where}' is longer than the {self.expected} bytes announced; refused"
            )
        return int(n)

    def _check_complete(self) -> None:
        if self.expected is not None and self.received < self.expected:
            raise TruncatedDownload(
                f"download of '{self.where}' is truncated: got {self.received} of {self.expected} bytes"
            )

    def close(self) -> None:
        try:
            self._raw.close()
        except Exception as e:
            if not _broken_transfer(e):
                raise
        super().close()


def _broken_transfer(e: Exception) -> bool:
    """An `OSError`, or `http.client`'s errors (urllib3's streams raise them): looked up only if that
    module was loaded, since nothing else raises them, and importing it (the `email` package) costs
    every `storekit copy` from a cache 30 ms of start-up."""
    client = sys.modules.get("http.client")
    return isinstance(e, OSError) or (client is not None and isinstance(e, client.HTTPException))


class PendingFile:
    """A file being written under a temp name; `publish(name)` renames it into place."""

    def __init__(self, root: str, directory: str) -> None:
        self._root = root
        os.makedirs(os.path.join(root, directory), exist_ok=True)
        self._temp = os.path.join(root, directory, f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
        self.file = open(self._temp, "xb")  # noqa: SIM115 - closed by publish/discard
        self.published = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.file.write(data)

    def publish(self, name: str) -> None:
        self.file.close()
        os.chmod(self._temp, 0o644)
        os.replace(self._temp, os.path.join(self._root, name))
        self.published = True

    def discard(self) -> None:
        self.file.close()
        if not self.published:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp)


class Transport(ABC):
    """Named files of one binary cache. `uri` names it in messages."""

    uri: str
    writable: bool = False

    @abstractmethod
    def read(self, name: str) -> bytes | None:
        """A small file's bytes, or None if there is no such file."""

    @abstractmethod
    def open(self, name: str, expected_size: int | None = None) -> Download | None:
        """A stream of a (large) file, or None if there is no such file."""

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    def write(self, name: str, data: bytes) -> None:
        raise StoreError(f"binary cache '{self.uri}' is read-only; write to a file:// cache instead")

    def pending(
        self, directory: str, name: str | None = None
    ) -> contextlib.AbstractContextManager[PendingFile]:
        """A file to write and then `publish`; `name`, when the final name is known up front."""
        raise StoreError(f"binary cache '{self.uri}' is read-only; write to a file:// cache instead")

    def list_names(self, suffix: str) -> list[str]:
        raise StoreError(f"binary cache '{self.uri}' cannot list its files; name the paths you want")

    def close(self) -> None:  # noqa: B027 - only transports holding connections need it
        """Let go of connections; the transport still works afterwards (it reconnects)."""


class FileTransport(Transport):
    """A cache in a local directory; the directory is created on the first write."""

    writable = True

    def __init__(self, root: str) -> None:
        self.root = root
        self.uri = f"file://{root}"

    def _path(self, name: str) -> str:
        return os.path.join(self.root, check_name(name, self.uri))

    def read(self, name: str) -> bytes | None:
        try:
            with open(self._path(name), "rb") as f:
                return _small(f.read(MAX_SMALL_FILE + 1), self._path(name))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise StoreError(f"cannot read '{self._path(name)}' of binary cache '{self.uri}': {e}") from e

    def open(self, name: str, expected_size: int | None = None) -> Download | None:
        try:
            f = open(self._path(name), "rb")  # noqa: SIM115 - owned by the Download
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise StoreError(f"cannot open '{self._path(name)}' of binary cache '{self.uri}': {e}") from e
        return Download(f, expected_size or None, self._path(name))

    def exists(self, name: str) -> bool:
        return os.path.exists(self._path(name))

    def write(self, name: str, data: bytes) -> None:
        with self.pending(os.path.dirname(name)) as pending:
            pending.write(data)
            pending.publish(name)

    @contextlib.contextmanager
    def pending(self, directory: str, name: str | None = None) -> Iterator[PendingFile]:
        try:
            pending = PendingFile(self.root, directory)
        except OSError as e:
            raise StoreError(f"cannot write to binary cache '{self.uri}': {e}") from e
        try:
            yield pending
        finally:
            pending.discard()

    def list_names(self, suffix: str) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root) if n.endswith(suffix))
        except FileNotFoundError:
            return []


class HttpTransport(Transport):
    """A cache behind an HTTP(S) server (nginx, `storekit cache serve`, nix-serve); read-only.

    Requests go through one `http_client.HttpClient`: kept-alive connections shared by all threads
    (at most `connections` at once), connect and read timeouts, NAR downloads that resume with
    `Range` after a cut. Redirects are followed only within the cache's origin (scheme, host, port)
    unless `any_redirect` (the cache URL's `?redirects=any`): a cache must not send storekit to a
    host the user never named (an internal service, a downgrade from https to http).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float | None = None,
        *,
        any_redirect: bool = False,
        connect_timeout: float | None = None,
        connections: int | None = None,
    ) -> None:
        from storekit.store.http_limits import CONNECT_TIMEOUT_S, CONNECTIONS, READ_TIMEOUT_S

        self.base_url = base_url.rstrip("/")
        self.uri = self.base_url
        self.timeout = READ_TIMEOUT_S if timeout is None else timeout
        self.connect_timeout = CONNECT_TIMEOUT_S if connect_timeout is None else connect_timeout
        self.connections = connections or CONNECTIONS
        self.any_redirect = any_redirect
        self._client: HttpClient | None = None
        self._client_guard = threading.Lock()
        self.fast = _fast_client(self.uri)(
            self.uri,
            connect_timeout=self.connect_timeout,
            read_timeout=self.timeout,
            connections=self.connections,
        )

    @property
    def client(self) -> HttpClient:
        """The synchronous client (urllib3), made on first need: the fast path rarely hands back."""
        with self._client_guard:
            if self._client is None:
                from storekit.store.http_client import HttpClient

                self._client = HttpClient(
                    self.uri,
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.timeout,
                    connections=self.connections,
                    any_redirect=self.any_redirect,
                )
            return self._client

    def _url(self, name: str) -> str:
        return f"{self.base_url}/{urllib.parse.quote(check_name(name, self.uri))}"

    def read(self, name: str) -> bytes | None:
        """A small file (narinfo …), decoded if the server sent it with a `Content-Encoding`."""
        if self.fast.on_loop():  # never wait for the loop on the loop itself
            return self._read_sync(name)
        return self.fast.submit(self.read_async(name)).result()

    async def read_async(self, name: str) -> bytes | None:
        """`read` on the event loop of `fast`: one request, unless the answer needs `HttpClient`."""
        from storekit.store.content_encoding import decode_body
        from storekit.store.http_async import FALLBACK, Whole

        url = self._url(name)
        answer = await self.fast.get(url, MAX_SMALL_FILE + 1)
        if answer is None:
            return None
        if not isinstance(answer, Whole):  # not plain, or cut: the synchronous client's rules
            assert answer is FALLBACK or answer is not None
            return await _running_loop().run_in_executor(None, self._read_sync, name)
        return decode_body(_small(answer.data, url), answer.encoding, url)

    def _read_sync(self, name: str) -> bytes | None:
        from storekit.store.content_encoding import decode_body
        from storekit.store.http_client import ResumingBody, announced_length

        url = self._url(name)
        response = self.client.get(url)
        if response is None:
            return None
        encoding = response.headers.get("Content-Encoding")
        body = ResumingBody(self.client, url, response)
        with Download(body, announced_length(response), url) as download:  # type: ignore[arg-type]
            data = _small(_read_up_to(download, MAX_SMALL_FILE + 1), url)
        return decode_body(data, encoding, url)

    async def open_async(self, name: str, expected_size: int) -> Download | None:
        """`open` of a file small enough to hold in memory (`expected_size` bytes, from its narinfo),
        fetched on the event loop; a body cut midway resumes through `HttpClient` when read."""
        from storekit.store.http_async import Partial, Whole

        url = self._url(name)
        answer = await self.fast.get(url, expected_size + 1)
        if answer is None:
            return None
        if isinstance(answer, Whole):
            return Download(io.BytesIO(answer.data), expected_size, url, answer.data)
        if isinstance(answer, Partial):

            def rest() -> ResumingBody:
                from storekit.store.http_client import ResumingBody  # urllib3: only for a resume

                return ResumingBody.continuing(
                    self.client,
                    url,
                    size=answer.size,
                    position=len(answer.data),
                    validator=answer.validator,
                    cause=answer.cause,
                )

            return Download(_Joined(answer.data, rest), expected_size, url)  # type: ignore[arg-type]
        return await _running_loop().run_in_executor(None, self.open, name, expected_size)

    def open(self, name: str, expected_size: int | None = None) -> Download | None:
        from storekit.store.http_client import ResumingBody, announced_length

        url = self._url(name)
        response = self.client.get(url)
        if response is None:
            return None
        body = ResumingBody(self.client, url, response)
        return Download(body, expected_size or announced_length(response) or None, url)  # type: ignore[arg-type]

    def exists(self, name: str) -> bool:
        from storekit.store.http_client import discard

        response = self.client.get(self._url(name), method="HEAD")
        if response is None:
            return False
        discard(response)
        return True

    def close(self) -> None:
        self.fast.close()
        with self._client_guard:
            client = self._client
        if client is not None:
            client.close()


def _fast_client(url: str) -> type[AsyncHttp]:
    """The event loop's client: storekit's own connections for http:// (`http_lean`: a third of
    aiohttp's CPU per request, and no aiohttp to import), aiohttp for https:// (TLS)."""
    if url.lower().startswith("http://"):
        from storekit.store.http_lean import LeanHttp

        return LeanHttp
    from storekit.store.http_async import AsyncHttp

    return AsyncHttp


def _running_loop() -> asyncio.AbstractEventLoop:
    import asyncio  # here, not at the top: only HTTP caches need it, and it takes a while to import

    return asyncio.get_running_loop()


class _Joined(io.RawIOBase):
    """Bytes already received, then the stream `rest()` opens (a resumed request, on first need)."""

    def __init__(self, head: bytes, rest: Callable[[], io.RawIOBase]) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._open_rest = rest
        self._rest: io.RawIOBase | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if self._rest is None:
            self._rest = self._open_rest()
        return self._rest.readinto(buffer) or 0

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
        super().close()


def _read_up_to(stream: io.RawIOBase, limit: int) -> bytes:
    """All of `stream`, or its first `limit` bytes: a raw read returns what has arrived so far."""
    parts, size = [], 0
    while size < limit and (data := stream.read(limit - size)):
        parts.append(data)
        size += len(data)
    return b"".join(parts)


def _small(data: bytes, where: str) -> bytes:
    if len(data) > MAX_SMALL_FILE:
        raise SubstituteError(
            f"'{where}' is larger than {MAX_SMALL_FILE} bytes, too large for its kind; refused"
        )
    return data
