"""The index a relocating cache server keeps: which old path became which new one.

In content-addressed mode a new name is a hash of the rewritten contents, so it cannot be computed
from a client's request: the server relocates a path when told to (at start-up, or through its
`/relocate/<old hash part>` endpoint) and remembers `old -> new` here, so that asking again (even
after a restart) answers at once instead of rewriting the closure a second time. The new paths
themselves live in the server's backing store, which serves their narinfos and NARs; this file only
maps names, and an entry whose new path is no longer valid there is simply relocated again.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from storekit.errors import StoreError


class RelocationIndex:
    """`old store path -> new store path`, kept in memory and, given a file, persisted as JSON."""

    def __init__(self, file: Path | None = None) -> None:
        self.file = file
        self._lock = threading.Lock()
        self._map: dict[str, str] = self._load(file) if file is not None else {}

    @staticmethod
    def _load(file: Path) -> dict[str, str]:
        try:
            data = json.loads(file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise StoreError(
                f"cannot read the relocation index '{file}': {e}; delete it to start afresh"
            ) from e
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise StoreError(f"the relocation index '{file}' is not a JSON object of paths; delete it")
        return {str(k): v for k, v in data.items()}

    def get(self, old: str) -> str | None:
        with self._lock:
            return self._map.get(old)

    def add(self, pairs: dict[str, str]) -> None:
        """Record `pairs` (and write the file whole, atomically: a crash leaves the old or the new one)."""
        with self._lock:
            self._map.update(pairs)
            if self.file is not None:
                self._save(self.file)

    def _save(self, file: Path) -> None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".index-", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(self._map, f, indent=1, sort_keys=True)
            os.replace(tmp, file)
        except OSError as e:
            raise StoreError(f"cannot write the relocation index '{file}': {e.strerror or e}") from e
