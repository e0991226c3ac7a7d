"""A store that lives in a dict: for tests of code written against `Store`, and for dry runs.

It keeps each NAR as bytes, so it is meant for small paths. It checks what every store checks
(NAR hash and size, references valid, content addresses) so tests against it mean something.
"""

from __future__ import annotations

from collections.abc import Iterator

from storekit.bytestreams import ByteSource
from storekit.errors import HashMismatch, StoreError
from storekit.hashing import Hash
from storekit.store.base import Store, ValidPathInfo
from storekit.store.content_address import ContentAddress
from storekit.storepath import StoreDir, StorePath

CHUNK = 1 << 16


class MemoryStore(Store):
    def __init__(self, store_dir: StoreDir | None = None) -> None:
        self.store_dir = store_dir or StoreDir()
        self._infos: dict[StorePath, ValidPathInfo] = {}
        self._nars: dict[StorePath, bytes] = {}

    @property
    def uri(self) -> str:
        return f"memory://?store={self.store_dir}"

    def lookup_path_info(self, path: StorePath) -> ValidPathInfo | None:
        return self._infos.get(path)

    def nar_from_path(self, path: StorePath) -> Iterator[bytes]:
        self.query_path_info(path)
        nar = self._nars[path]
        return (nar[i : i + CHUNK] for i in range(0, len(nar), CHUNK))

    def add_from_nar(self, info: ValidPathInfo, source: ByteSource, *, repair: bool = False) -> None:
        if info.path.store_dir != self.store_dir:
            raise StoreError(f"path '{info.path}' does not belong to store dir '{self.store_dir}'")
        if not repair and info.path in self._infos:
            return
        missing = sorted(str(r) for r in info.references if r != info.path and r not in self._infos)
        if missing:
            raise StoreError(f"cannot add '{info.path}': its references are not valid: {', '.join(missing)}")
        if info.ca is not None:
            expected = ContentAddress.parse(info.ca).store_path(
                self.store_dir, info.path.name, info.references, info.path
            )
            if expected != info.path:
                raise StoreError(f"path '{info.path}' claims to be content-addressed but isn't")
        nar = source.read()
        got = Hash.of(nar)
        if got != info.nar_hash:
            raise HashMismatch(f"NAR of '{info.path}'", str(info.nar_hash), str(got))
        if len(nar) != info.nar_size:
            raise StoreError(f"size mismatch importing path '{info.path}': {info.nar_size} != {len(nar)}")
        self._infos[info.path] = info
        self._nars[info.path] = nar

    def query_referrers(self, path: StorePath) -> set[StorePath]:
        return {p for p, i in self._infos.items() if path in i.references}

    def query_all_valid_paths(self) -> set[StorePath]:
        return set(self._infos)

    def delete(self, path: StorePath) -> None:
        users = self.query_referrers(path) - {path}
        if users:
            raise StoreError(
                f"cannot delete path '{path}' because it is in use by {', '.join(sorted(map(str, users)))}"
            )
        self._infos.pop(path, None)
        self._nars.pop(path, None)
