"""Nix's `nix-store --export` / `--import` format, so storekit and real Nix exchange paths both ways.

```
export = { u64(1) NAR u64(0x4558494e) str(path) u64(n) str(ref)*n str(deriver or "") u64(0) } u64(0)
```
(Nix 2.8 export-import.cc; `str` is the NAR-style padded string, the final `u64(0)` of each entry says
"no legacy signature"). Paths come dependencies first, so an importer can register them in order.
The format carries no signatures or content addresses; imported paths get neither, as with Nix.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterable

from storekit.bytestreams import ByteSink, ByteSource
from storekit.errors import HashMismatch, StoreError
from storekit.nar import format as fmt
from storekit.store.base import SPOOL_BYTES, Store, ValidPathInfo
from storekit.store.streams import HashingReader
from storekit.storepath import StorePath

EXPORT_MAGIC = 0x4558494E
MAX_PATH = 4096
MAX_REFERENCES = 1 << 20


def export_paths(store: Store, paths: Iterable[StorePath], sink: ByteSink) -> int:
    """Write `paths` (not their closure) in Nix's export format; returns how many were written."""
    ordered = list(reversed(store.topo_sort(paths)))
    for path in ordered:
        sink.write(fmt.u64(1))
        _export_one(store, path, sink)
    sink.write(fmt.u64(0))
    return len(ordered)


def _export_one(store: Store, path: StorePath, sink: ByteSink) -> None:
    from storekit.hashing import new_hasher

    info = store.query_path_info(path)
    hasher = new_hasher("sha256")
    for chunk in store.nar_from_path(path):
        hasher.update(chunk)
        sink.write(chunk)
    got = hasher.finish()
    if got != info.nar_hash:
        # like Nix: refuse to spread a path whose contents changed since it was registered
        raise HashMismatch(f"exported path '{path}' (its contents changed)", str(info.nar_hash), str(got))
    trailer = [fmt.u64(EXPORT_MAGIC), fmt.string(str(path).encode()), fmt.u64(len(info.references))]
    trailer += [fmt.string(str(r).encode()) for r in sorted(info.references)]
    trailer += [fmt.string(str(info.deriver).encode() if info.deriver else b""), fmt.u64(0)]
    sink.write(b"".join(trailer))


def import_paths(store: Store, source: ByteSource) -> list[StorePath]:
    """Read an export stream and add every path in it (already valid ones are kept as they are)."""
    from storekit.nar.reader import read_nar

    imported: list[StorePath] = []
    while True:
        marker = _read_u64(source, "entry marker")
        if marker == 0:
            return imported
        if marker != 1:
            raise StoreError("input doesn't look like something created by 'nix-store --export'")
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            tee = HashingReader(source, copy=spool)
            for _ in read_nar(tee, to_eof=False):
                pass
            nar_hash, nar_size = tee.finish()
            info = _read_trailer(store, source, nar_hash, nar_size)
            spool.seek(0)
            store.add_from_nar(info, spool)
        imported.append(info.path)


def _read_trailer(store: Store, source: ByteSource, nar_hash: object, nar_size: int) -> ValidPathInfo:
    from storekit.hashing import Hash

    assert isinstance(nar_hash, Hash)
    if _read_u64(source, "magic") & 0xFFFFFFFF != EXPORT_MAGIC:
        raise StoreError("Nix archive cannot be imported; wrong format (bad magic after the NAR)")
    path = store.store_dir.parse_path(_read_string(source, "path"))
    count = _read_u64(source, "reference count")
    if count > MAX_REFERENCES:
        raise StoreError(f"export of '{path}' claims {count} references; the stream is corrupt")
    refs = frozenset(store.store_dir.parse_path(_read_string(source, "reference")) for _ in range(count))
    deriver_text = _read_string(source, "deriver")
    deriver = store.store_dir.parse_path(deriver_text) if deriver_text else None
    if _read_u64(source, "signature flag") == 1:
        _read_string(source, "legacy signature")
    return ValidPathInfo(path, nar_hash, nar_size, refs, deriver)


def _read_exact(source: ByteSource, n: int, what: str) -> bytes:
    data = source.read(n)
    if len(data) != n:
        raise StoreError(f"export stream ends early (reading the {what})")
    return data


def _read_u64(source: ByteSource, what: str) -> int:
    value: int = struct.unpack("<Q", _read_exact(source, 8, what))[0]
    return value


def _read_string(source: ByteSource, what: str) -> str:
    n = _read_u64(source, what)
    if n > MAX_PATH:
        raise StoreError(f"export stream has a {n}-byte {what}; the stream is corrupt")
    data = _read_exact(source, n + fmt.padding(n), what)
    if any(data[n:]):
        raise StoreError(f"export stream has non-zero padding after the {what}")
    return data[:n].decode(errors="surrogateescape")
