"""One upstream of a pull-through `cache serve`: its narinfos, and its NARs downloaded and verified.

An upstream is a binary cache (`http(s)://…`, `file://…`, `s3://…`) read through storekit's transport
(`store/transport.py`), so a faster HTTP client there serves the hierarchy too. It is untrusted:
`fetch_into` stores the NAR file exactly as served while checking everything the narinfo promises
(the file's size and hash, the decompressed NAR's size and hash, no byte past `NarSize`), and only a
file that passed is handed back for publishing; the signature check comes before the download (in
`pull_through.py`). Each failure raises a `StorekitError` whose message is the reason the upstream
is dropped for that request: a truncated or over-long body, a hang (the transport's timeout), a
body that does not decompress, a hash that differs (both hashes named).
"""

from __future__ import annotations

import dataclasses
import io
import urllib.parse
from typing import BinaryIO

from storekit.errors import HashMismatch, NarInfoError, StoreError, SubstituteError
from storekit.hashing import Hash, new_hasher
from storekit.narinfo import NarInfo, NixCacheInfo
from storekit.store.compression import CHUNK, EXTENSIONS, Decoding, decompressor
from storekit.store.s3_spec import S3CacheSpec
from storekit.store.specs import FileCacheSpec, HttpCacheSpec, parse_store_spec
from storekit.store.transport import (
    FileTransport,
    HttpTransport,
    PendingFile,
    Transport,
    name_problem,
)
from storekit.storepath import StoreDir
from storekit.transfer.cache_dir import CACHE_INFO, CacheDirError

#: Seconds an upstream may stay silent (connecting, or mid-body) before it is dropped for the request.
TIMEOUT_S = 30.0


def open_transport(spec: str, timeout: float = TIMEOUT_S) -> tuple[Transport, str | None]:
    """The transport of an upstream cache URL, and the store dir its `?store=` names (if it does)."""
    parsed = parse_store_spec(spec)
    explicit = dict(urllib.parse.parse_qsl(spec.partition("?")[2])).get("store")
    if isinstance(parsed, HttpCacheSpec):
        redirects = dict(parsed.params).get("redirects", "same-origin")
        return HttpTransport(parsed.url, timeout, any_redirect=redirects == "any"), explicit
    if isinstance(parsed, FileCacheSpec):
        return FileTransport(parsed.path), explicit
    if isinstance(parsed, S3CacheSpec):
        from storekit.store.s3 import S3Transport  # boto3 is loaded only when needed (s3_clients)

        return S3Transport(parsed), explicit
    raise StoreError(f"upstream '{spec}' is not a binary cache: give an http(s)://, file:// or s3:// URL")


def upstream_store_dir(spec: str, timeout: float = TIMEOUT_S) -> str | None:
    """The store dir of an upstream: its `?store=`, else its nix-cache-info's (None: it did not say)."""
    transport, explicit = open_transport(spec, timeout)
    try:
        if explicit is not None:
            return explicit
        data = transport.read(CACHE_INFO)
    finally:
        transport.close()
    return None if data is None else NixCacheInfo.parse(data.decode("utf-8", "replace")).store_dir


class Upstream:
    """One upstream cache for `store_dir`; its nix-cache-info is checked on first use."""

    def __init__(self, spec: str, store_dir: StoreDir, *, timeout: float = TIMEOUT_S) -> None:
        self.transport, _ = open_transport(spec, timeout)
        self.uri = self.transport.uri
        self.store_dir = store_dir
        self._checked = False

    def _check_cache_info(self) -> None:
        """Like Nix, refuse a cache for another store dir: its paths would be other paths."""
        if self._checked:
            return
        data = self.transport.read(CACHE_INFO)
        if data is not None:
            info = NixCacheInfo.parse(data.decode("utf-8", "replace"), f"{self.uri}/{CACHE_INFO}")
            if info.store_dir is not None and info.store_dir != self.store_dir.path:
                raise StoreError(f"it serves store dir '{info.store_dir}', not '{self.store_dir}'")
        self._checked = True

    def narinfo(self, hash_part: str) -> NarInfo | None:
        """The upstream's narinfo for `hash_part` (read afresh: a pull-through cache keeps no misses)."""
        self._check_cache_info()
        name = f"{hash_part}.narinfo"
        data = self.transport.read(name)
        if data is None:
            return None
        whence = f"{self.uri}/{name}"
        try:
            narinfo = NarInfo.parse(data.decode("utf-8"), self.store_dir, whence)
        except UnicodeDecodeError as e:
            raise NarInfoError(f"NAR info file '{whence}' is corrupt: not UTF-8 ({e})") from e
        if narinfo.store_path.hash_part != hash_part:
            raise NarInfoError(f"NAR info file '{whence}' describes another path, '{narinfo.store_path}'")
        return narinfo

    def fetch_into(self, narinfo: NarInfo, pending: PendingFile) -> NarInfo:
        """Download `narinfo`'s NAR file into `pending`, verified; the narinfo to publish for it."""
        path = narinfo.store_path
        problem = name_problem(narinfo.url)
        if problem is not None:
            raise SubstituteError(
                f"the narinfo of '{path}' has URL {narinfo.url!r}, which leads elsewhere ({problem})"
            )
        ext = EXTENSIONS.get(narinfo.compression)
        if ext is None:
            raise SubstituteError(
                f"the NAR of '{path}' uses compression '{narinfo.compression}', unknown here"
            )
        download = self.transport.open(narinfo.url, narinfo.file_size or None)
        if download is None:
            raise SubstituteError(f"it has a narinfo for '{path}' but not its NAR '{narinfo.url}'")
        expected_algo = narinfo.file_hash.algo if narinfo.file_hash is not None else "sha256"
        with _Tee(download, pending, expected_algo) as tee:
            raw: BinaryIO = tee  # type: ignore[assignment]
            stream = Decoding(decompressor(narinfo.compression, raw, path), narinfo, self.uri, None)
            nar_hash, nar_size = _nar_digest(stream, narinfo.nar_hash.algo)
            tee.drain()
        if narinfo.file_hash is not None and tee.expected_hash() != narinfo.file_hash:
            raise HashMismatch(
                f"file '{narinfo.url}' of '{path}'", str(narinfo.file_hash), str(tee.expected_hash())
            )
        if nar_size != narinfo.nar_size:
            raise SubstituteError(
                f"the NAR of '{path}' is {nar_size} bytes, not the {narinfo.nar_size} its narinfo declares "
                "(truncated, or not the NAR the narinfo describes)"
            )
        if nar_hash != narinfo.nar_hash:
            raise HashMismatch(f"NAR of '{path}'", str(narinfo.nar_hash), str(nar_hash))
        file_hash = tee.sha256()
        return dataclasses.replace(
            narinfo, url=f"nar/{file_hash.nix32}.nar{ext}", file_hash=file_hash, file_size=tee.size
        )


def _nar_digest(stream: io.RawIOBase, algo: str) -> tuple[Hash, int]:
    hasher, size = new_hasher(algo), 0
    buffer = bytearray(CHUNK)
    while n := stream.readinto(buffer):
        hasher.update(memoryview(buffer)[:n])
        size += n
    return hasher.finish(), size


class _Tee(io.RawIOBase):
    """Reads the download, writing each byte into the cache dir's temp file and hashing it."""

    def __init__(self, raw: io.RawIOBase, pending: PendingFile, algo: str) -> None:
        super().__init__()
        self._raw = raw
        self._pending = pending
        self._sha256 = new_hasher("sha256")
        self._other = new_hasher(algo) if algo != "sha256" else None
        self._hashes: tuple[Hash, Hash | None] | None = None
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)
        if not n:
            return 0
        data = memoryview(buffer)[:n]
        try:
            self._pending.write(data)
        except OSError as e:
            raise CacheDirError(f"cannot write a download into the cache dir: {e.strerror or e}") from e
        self._sha256.update(data)
        if self._other is not None:
            self._other.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        """Read what the decompressor left (the file is stored and hashed whole)."""
        buffer = bytearray(CHUNK)
        while self.readinto(buffer):
            pass
        self._hashes = (self._sha256.finish(), None if self._other is None else self._other.finish())

    def sha256(self) -> Hash:
        assert self._hashes is not None
        return self._hashes[0]

    def expected_hash(self) -> Hash:
        assert self._hashes is not None
        return self._hashes[1] or self._hashes[0]

    def close(self) -> None:
        self._raw.close()
        super().close()
