"""A binary cache as a store: `nix-cache-info`, `<hashpart>.narinfo` and `nar/<filehash>.nar[.xz|.zst|.bz2]`.

The layout and every file are what Nix 2.8's `BinaryCacheStore` writes (`nix copy --to file://…`), so
real Nix substitutes from a cache storekit wrote and storekit reads caches Nix (or nginx, nix-serve)
serves. A path is valid in a cache when its narinfo exists; the NAR file is written first (under a
temp name, then renamed to its content hash), the narinfo last, so a reader never finds a narinfo
whose NAR is missing. Reads check what the narinfo promises: the file's size and hash while
downloading; the NAR's hash and size are checked by whichever store the NAR goes into.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from storekit.bytestreams import ByteSource
from storekit.errors import (
    HashMismatch,
    NarInfoError,
    PathNotValid,
    SignatureError,
    StoreError,
    SubstituteError,
    WireFormatError,
)
from storekit.narinfo import NarInfo, NixCacheInfo
from storekit.realisation import FULL_JSON_KEYS, DrvOutput, Realisation
from storekit.signing import SecretKey
from storekit.store.base import Store, ValidPathInfo
from storekit.store.compression import (
    CHUNK,
    EXTENSIONS,
    Decoding,
    FileCheck,
    decompressor,
    write_compressed,
)
from storekit.store.pipeline import HashedPrefetch
from storekit.store.specs import FileCacheSpec, HttpCacheSpec
from storekit.store.streams import ChunkReader, HashingReader
from storekit.store.transport import Download, FileTransport, HttpTransport, Transport, name_problem
from storekit.storepath import StoreDir, StorePath
from storekit.wire.common import realisation_from_json, realisation_to_json

CACHE_INFO = "nix-cache-info"
#: A NAR up to this size is read and hashed on the writing thread: a reading thread costs more.
INLINE_NAR = 256 << 10


def open_binary_cache(spec: FileCacheSpec | HttpCacheSpec) -> BinaryCacheStore:
    """Open the cache a `file://` or `http(s)://` spec names (`?secret-key=FILE` signs what is written)."""
    params = dict(spec.params)
    transport: Transport
    if isinstance(spec, FileCacheSpec):
        transport, compression = FileTransport(spec.path), spec.compression
    else:
        redirects = params.get("redirects", "same-origin")
        if redirects not in ("same-origin", "any"):
            raise StoreError(
                f"binary cache '{spec}': redirects must be 'same-origin' or 'any', not '{redirects}'"
            )
        transport = HttpTransport(
            spec.url,
            _seconds(spec, params, "stalled-download-timeout"),
            any_redirect=redirects == "any",
            connect_timeout=_seconds(spec, params, "connect-timeout"),
            connections=int(_seconds(spec, params, "http-connections") or 0) or None,
        )
        compression = params.get("compression", "xz")
    keys = [read_secret_key(params["secret-key"])] if params.get("secret-key") else []
    priority = params.get("priority")
    if priority is not None and not priority.lstrip("-").isdigit():
        raise StoreError(f"binary cache '{spec}': priority '{priority}' is not an integer")
    try:
        return BinaryCacheStore(
            transport,
            StoreDir(spec.store_dir),
            compression=compression,
            secret_keys=keys,
            priority=None if priority is None else int(priority),
            uri=str(spec),
        )
    except BaseException:
        transport.close()  # its connections (and an HTTP cache's loop thread) go with the error
        raise


def _seconds(spec: HttpCacheSpec, params: dict[str, str], name: str) -> float | None:
    """A positive number parameter (`connect-timeout=5`), or None when not given."""
    text = params.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise StoreError(f"binary cache '{spec}': {name} must be a positive number, not '{text}'")
    return value


def read_secret_key(file: str) -> SecretKey:
    """A secret key from a file as `nix key generate-secret` writes it."""
    try:
        with open(file, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SignatureError(f"cannot read the secret key file '{file}': {e.strerror or e}") from e
    try:
        return SecretKey.parse(text)
    except SignatureError as e:
        raise SignatureError(f"secret key file '{file}': {e}") from e


class BinaryCacheStore(Store):
    """A Nix binary cache over a transport; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        store_dir: StoreDir,
        *,
        compression: str = "xz",
        secret_keys: Iterable[SecretKey] = (),
        priority: int | None = None,
        uri: str | None = None,
    ) -> None:
        if compression not in EXTENSIONS:
            raise StoreError(f"unknown compression '{compression}' (known: {', '.join(EXTENSIONS)})")
        self.transport = transport
        self.store_dir = store_dir
        self.compression = compression
        self.secret_keys = tuple(secret_keys)
        self._uri = uri or transport.uri
        self._lock = threading.Lock()
        self._narinfos: dict[str, NarInfo | None] = {}
        self._layout_ready = False
        self.cache_info = self._read_cache_info()
        if priority is None and self.cache_info is not None:
            priority = self.cache_info.priority
        self.priority = priority

    @property
    def uri(self) -> str:
        return self._uri

    def close(self) -> None:
        self.transport.close()

    def _read_cache_info(self) -> NixCacheInfo | None:
        """Like Nix, refuse a cache made for another store dir: its paths would be other paths."""
        data = self.transport.read(CACHE_INFO)
        if data is None:
            return None
        info = NixCacheInfo.parse(data.decode("utf-8", "replace"), f"{self.transport.uri}/{CACHE_INFO}")
        if info.store_dir is not None and info.store_dir != self.store_dir.path:
            raise StoreError(
                f"binary cache '{self.uri}' is for Nix stores with prefix '{info.store_dir}', "
                f"not '{self.store_dir}'; its paths cannot be used in store dir '{self.store_dir}' "
                f"(open it as '…?store={info.store_dir}' to read it for that store dir)"
            )
        return info

    # --- reading -------------------------------------------------------------------------------------

    def narinfo_name(self, hash_part: str) -> str:
        return f"{hash_part}.narinfo"

    def _fetch_narinfo(self, hash_part: str) -> NarInfo | None:
        with self._lock:
            if hash_part in self._narinfos:
                return self._narinfos[hash_part]
        return self.narinfo_from_bytes(hash_part, self.transport.read(self.narinfo_name(hash_part)))

    def narinfo_from_bytes(self, hash_part: str, data: bytes | None) -> NarInfo | None:
        """The narinfo of `hash_part` from the bytes of its file (None: no such file), checked and
        remembered as `_fetch_narinfo` does: for a caller that fetched the file itself."""
        name = self.narinfo_name(hash_part)
        narinfo = None
        if data is not None:
            whence = f"{self.transport.uri}/{name}"
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise NarInfoError(f"NAR info file '{whence}' is corrupt: not UTF-8 ({e})") from e
            narinfo = NarInfo.parse(text, self.store_dir, whence)
            if narinfo.store_path.hash_part != hash_part:
                raise NarInfoError(
                    f"NAR info file '{whence}' is corrupt: it describes '{narinfo.store_path}'"
                )
        with self._lock:
            self._narinfos[hash_part] = narinfo
        return narinfo

    def lookup_narinfo(self, path: StorePath) -> NarInfo | None:
        if path.store_dir != self.store_dir:
            return None
        narinfo = self._fetch_narinfo(path.hash_part)
        if narinfo is not None and narinfo.store_path != path:
            return None
        return narinfo

    def lookup_path_info(self, path: StorePath) -> ValidPathInfo | None:
        narinfo = self.lookup_narinfo(path)
        return None if narinfo is None else path_info_of(narinfo)

    def query_path_from_hash_part(self, hash_part: str) -> StorePath | None:
        narinfo = self._fetch_narinfo(hash_part)
        return None if narinfo is None else narinfo.store_path

    def query_all_valid_paths(self) -> set[StorePath]:
        names = self.transport.list_names(".narinfo")
        found = (self._fetch_narinfo(n.removesuffix(".narinfo")) for n in names)
        return {n.store_path for n in found if n is not None}

    def query_realisation(self, output: DrvOutput) -> Realisation | None:
        """Where a CA derivation's output is, by either layout a cache may use.

        Newer Nix writes `build-trace-v2/<drv base name>/<output>.doi` holding `{outPath, signatures}`
        (output keyed by `.drv` path); Nix 2.8 to 2.34 write `realisations/<hash>!<output>.doi` holding
        the whole realisation (keyed by hash modulo).
        """
        if output.drv_path is not None:
            name = f"build-trace-v2/{output.drv_path.base_name}/{output.output}.doi"
        else:
            name = f"realisations/{output}.doi"
        data = self.transport.read(name)
        if data is None:
            return None
        where = f"{self.transport.uri}/{name}"
        try:
            found = realisation_from_json(data.decode("utf-8"), self.store_dir)
        except (UnicodeDecodeError, WireFormatError) as e:
            raise NarInfoError(f"build trace file '{where}' is corrupt: {e}") from e
        return found if found.id is not None else found.replace(id=output)

    def register_realisation(self, value: Realisation) -> None:
        """Nix 2.8's `registerDrvOutput`: `realisations/<hash>!<output>.doi`, the realisation's JSON."""
        assert value.id is not None, "a realisation is published under its DrvOutput"
        self._ensure_layout()
        full = value.replace(json_keys=FULL_JSON_KEYS)
        self.transport.write(f"realisations/{value.id}.doi", realisation_to_json(full).encode())

    def query_referrers(self, path: StorePath) -> set[StorePath]:
        """Caches keep no reverse index: this reads every narinfo (file caches only)."""
        return {p for p in self.query_all_valid_paths() if path in self.query_path_info(p).references}

    def nar_from_path(self, path: StorePath) -> Iterator[bytes]:
        narinfo = self.lookup_narinfo(path)
        if narinfo is None:
            raise PathNotValid(str(path), self.uri)
        stream = self.open_nar(narinfo)
        return _chunks(stream)

    def open_nar(self, narinfo: NarInfo, fetched: Callable[[], Download | None] | None = None) -> BinaryIO:
        """The decompressed NAR of a narinfo, as a stream that checks the file's size and hash.

        `fetched` gives the file's download when the caller started it already (None: no such file).
        """
        path = narinfo.store_path
        problem = name_problem(narinfo.url)
        if problem is not None:
            raise SubstituteError(
                f"narinfo of '{path}' in binary cache '{self.uri}' has URL {narinfo.url!r}, which leads "
                f"outside the cache ({problem}); refused"
            )
        if fetched is not None:
            download = fetched()
        else:
            download = self.transport.open(narinfo.url, narinfo.file_size or None)
        if download is None:
            raise SubstituteError(
                f"binary cache '{self.uri}' has a narinfo for '{path}' but not its NAR '{narinfo.url}'"
            )
        raw: BinaryIO = download  # type: ignore[assignment]
        check = None
        same_as_nar = narinfo.compression == "none" and narinfo.file_hash in (None, narinfo.nar_hash)
        if narinfo.file_hash is not None and not same_as_nar:
            # an uncompressed file's hash is the NAR hash, which the receiving store checks anyway
            what = f"file '{narinfo.url}' of '{path}' in '{self.uri}'"
            check = FileCheck(raw, narinfo.file_hash, what)
            raw = check  # type: ignore[assignment]
        stream = decompressor(narinfo.compression, raw, path)
        return Decoding(stream, narinfo, self.uri, check)  # type: ignore[return-value]

    # --- writing -----------------------------------------------------------------------------------

    def add_from_nar(self, info: ValidPathInfo, source: ByteSource, *, repair: bool = False) -> None:
        narinfo = self.upload_nar(info, source, repair=repair)
        if narinfo is not None:
            self.publish(narinfo)

    def upload_nar(self, info: ValidPathInfo, source: ByteSource, *, repair: bool = False) -> NarInfo | None:
        """Write the compressed NAR file and return the narinfo to publish (None: already valid).

        This is the slow half of adding a path and needs no reference to be valid yet, so a copy can
        run it for many paths at once and publish the narinfos in dependency order.
        """
        return self.upload_chunks(info, iter(lambda: source.read(CHUNK), b""), repair=repair)

    def upload_chunks(
        self, info: ValidPathInfo, chunks: Iterator[bytes], *, repair: bool = False
    ) -> NarInfo | None:
        """`upload_nar` from an iterator of NAR chunks (such as `Store.nar_from_path`'s)."""
        if info.path.store_dir != self.store_dir:
            raise StoreError(f"path '{info.path}' does not belong to store dir '{self.store_dir}'")
        if not repair and self.is_valid_path(info.path):
            return None
        self._ensure_layout()
        ext = ".nar" + EXTENSIONS[self.compression]
        # uncompressed, the file hash is the NAR hash: its name is known before its bytes
        known = f"nar/{info.nar_hash.nix32}.nar" if self.compression == "none" else None
        with self.transport.pending("nar", known) as pending, _hashed(chunks, info.nar_size) as source:
            file_hash, file_size = write_compressed(source, pending, self.compression)
            nar_hash, nar_size = source.finish()
            file_hash = file_hash or nar_hash
            if nar_hash != info.nar_hash:
                raise HashMismatch(f"NAR of '{info.path}'", str(info.nar_hash), str(nar_hash))
            if nar_size != info.nar_size:
                raise StoreError(
                    f"size mismatch importing path '{info.path}': specified {info.nar_size} bytes, "
                    f"got {nar_size}; the NAR is truncated or not the one its metadata describes"
                )
            url = f"nar/{file_hash.nix32}{ext}"
            pending.publish(url)
        narinfo = NarInfo(
            store_path=info.path,
            url=url,
            nar_hash=info.nar_hash,
            nar_size=info.nar_size,
            compression=self.compression,
            file_hash=file_hash,
            file_size=file_size,
            references=tuple(sorted(r.base_name for r in info.references)),
            deriver=info.deriver.base_name if info.deriver else None,
            sigs=tuple(sorted(info.sigs)),
            ca=info.ca,
        )
        return self.sign(narinfo)

    def sign(self, narinfo: NarInfo) -> NarInfo:
        """Add a signature by each of this cache's secret keys (`?secret-key=`)."""
        if not self.secret_keys:
            return narinfo
        fingerprint = narinfo.fingerprint()
        sigs = set(narinfo.sigs) | {key.sign(fingerprint) for key in self.secret_keys}
        return _replace_sigs(narinfo, sigs)

    def publish(self, narinfo: NarInfo) -> None:
        """Make a path valid: write its narinfo, once its references are valid (Nix's rule)."""
        path = narinfo.store_path
        missing = [r for r in narinfo.reference_paths if r != path and not self.is_valid_path(r)]
        if missing:
            raise StoreError(
                f"cannot add '{path}' to the binary cache '{self.uri}' because its reference "
                f"'{missing[0]}' is not valid there; copy the whole closure"
            )
        self.transport.write(self.narinfo_name(path.hash_part), narinfo.to_text().encode())
        with self._lock:
            self._narinfos[path.hash_part] = narinfo

    def _ensure_layout(self) -> None:
        """Create what Nix's `LocalBinaryCacheStore` creates, and `nix-cache-info` with our store dir."""
        if self._layout_ready:
            return
        if not self.transport.writable:
            self.transport.write(CACHE_INFO, b"")  # raises the transport's read-only error
        if isinstance(self.transport, FileTransport):
            for sub in ("nar", "log", "realisations"):
                os.makedirs(os.path.join(self.transport.root, sub), exist_ok=True)
        if self.cache_info is None:
            self.cache_info = NixCacheInfo(store_dir=self.store_dir.path)
            self.transport.write(CACHE_INFO, self.cache_info.to_text().encode())
        self._layout_ready = True


def path_info_of(narinfo: NarInfo) -> ValidPathInfo:
    store_dir = narinfo.store_path.store_dir
    return ValidPathInfo(
        path=narinfo.store_path,
        nar_hash=narinfo.nar_hash,
        nar_size=narinfo.nar_size,
        references=frozenset(narinfo.reference_paths),
        deriver=store_dir.parse_base_name(narinfo.deriver) if narinfo.deriver else None,
        sigs=frozenset(narinfo.sigs),
        ca=narinfo.ca,
    )


def _replace_sigs(narinfo: NarInfo, sigs: Iterable[str]) -> NarInfo:
    from dataclasses import replace

    return replace(narinfo, sigs=tuple(sorted(set(sigs))))


@contextlib.contextmanager
def _hashed(chunks: Iterator[bytes], nar_size: int) -> Iterator[HashingReader | HashedPrefetch]:
    """The NAR read and sha256-hashed: inline when small (as `link.stage_from_nar` does), else ahead on
    a thread; a push of a thousand small paths would otherwise start a thousand threads."""
    if not 0 < nar_size <= INLINE_NAR:
        with HashedPrefetch(chunks) as prefetch:
            yield prefetch
        return
    try:
        yield HashingReader(ChunkReader(chunks))
    finally:
        close = getattr(chunks, "close", None)  # a generator holding a NAR stream: let it go
        if close is not None:
            close()


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk
