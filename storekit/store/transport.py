"""Where a binary cache's files are: a directory (`file://`) or a web server (`http(s)://`).

A transport moves named files (`nix-cache-info`, `<hash>.narinfo`, `nar/…`) and knows no Nix format.
Reads stream, so a NAR of any size costs constant memory, and a download that ends before its
announced length raises instead of passing for a short file. Writes go to a temp name in the same
directory and are renamed, so a reader (real Nix included) never sees half a file. Only the
directory or host the user named is ever contacted.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import BinaryIO

from storekit.errors import StoreError, SubstituteError

#: HTTP statuses that mean "no such file" (Nix treats 403 like 404: S3 answers 403 for missing keys).
_MISSING = (403, 404, 410)
TIMEOUT_S = 60.0


class TruncatedDownload(SubstituteError):
    """A file that ended before the length its server or narinfo announced."""


class Download(io.RawIOBase):
    """A readable stream of one remote file that raises `TruncatedDownload` when it ends early."""

    def __init__(self, raw: BinaryIO, expected: int | None, where: str) -> None:
        super().__init__()
        self._raw = raw
        self.expected = expected
        self.where = where
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        try:
            n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        except (http.client.HTTPException, OSError) as e:
            raise TruncatedDownload(
                f"download of '{self.where}' failed after {self.received} bytes: {e}"
            ) from e
        if not n:
            self._check_complete()
            return 0
        self.received += n
        return int(n)

    def _check_complete(self) -> None:
        if self.expected is not None and self.received < self.expected:
            raise TruncatedDownload(
                f"download of '{self.where}' is truncated: got {self.received} of {self.expected} bytes"
            )

    def close(self) -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            self._raw.close()
        super().close()


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


class FileTransport(Transport):
    """A cache in a local directory; the directory is created on the first write."""

    writable = True

    def __init__(self, root: str) -> None:
        self.root = root
        self.uri = f"file://{root}"

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def read(self, name: str) -> bytes | None:
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
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
    """A cache behind an HTTP(S) server (nginx, `storekit cache serve`, nix-serve); read-only."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.uri = self.base_url
        self.timeout = timeout

    def _url(self, name: str) -> str:
        return f"{self.base_url}/{urllib.parse.quote(name)}"

    def _request(self, name: str, method: str = "GET") -> http.client.HTTPResponse | None:
        url = self._url(name)
        request = urllib.request.Request(url, method=method, headers={"User-Agent": "storekit"})
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code in _MISSING:
                return None
            raise SubstituteError(f"binary cache '{self.uri}': HTTP {e.code} {e.reason} for '{url}'") from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise SubstituteError(f"cannot reach binary cache '{self.uri}' ({url}): {reason}") from e
        return response  # type: ignore[no-any-return]

    def read(self, name: str) -> bytes | None:
        download = self.open(name)
        if download is None:
            return None
        with download:
            return download.read()

    def open(self, name: str, expected_size: int | None = None) -> Download | None:
        response = self._request(name)
        if response is None:
            return None
        length = response.headers.get("Content-Length")
        announced = int(length) if length and length.isdigit() else None
        return Download(response, expected_size or announced or None, self._url(name))

    def exists(self, name: str) -> bool:
        response = self._request(name, "HEAD")
        if response is None:
            return False
        response.close()
        return True
