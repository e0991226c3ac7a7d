"""Build logs where Nix keeps them: `<log dir>/drvs/<first 2 chars>/<rest of the .drv base name>.bz2`.

One file per derivation, bzip2-compressed as Nix's `compress-build-log` does, so `nix log` reads
logs storekit wrote and `storekit log` reads Nix's. Readers also accept the plain (uncompressed) file
and the old flat layout `drvs/<base name>`, which is what Nix 2.8's `getBuildLog` looks for.
"""

from __future__ import annotations

import bz2
import os
from collections import deque

from storekit.errors import StoreError, StorekitError
from storekit.storepath import StorePath

DRVS = "drvs"
#: How many lines of a failed build's log go into the error message (Nix's `log-lines`).
TAIL_LINES = 10
_TAIL_BYTES = 64 << 10


def log_path(log_dir: str, drv: StorePath) -> str:
    """Where the (bzip2) log of `drv` is written."""
    base = drv.base_name
    return os.path.join(log_dir, DRVS, base[:2], base[2:] + ".bz2")


def log_candidates(log_dir: str, drv: StorePath) -> list[str]:
    """Every file Nix 2.8 would read the log of `drv` from, in its order (plain before `.bz2`)."""
    base = drv.base_name
    found = []
    for path in (os.path.join(log_dir, DRVS, base[:2], base[2:]), os.path.join(log_dir, DRVS, base)):
        found += [path, path + ".bz2"]
    return found


def read_log(log_dir: str, drv: StorePath) -> bytes | None:
    """The build log of `drv`, decompressed, or None when there is none."""
    for path in log_candidates(log_dir, drv):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise StorekitError(f"cannot read build log '{path}': {e.strerror}") from e
        if not path.endswith(".bz2"):
            return data
        try:
            return bz2.decompress(data)
        except (OSError, ValueError, EOFError):
            continue  # a log still being written or cut short; Nix skips it too
    return None


class LogWriter:
    """Streams a builder's output into its log file and keeps the tail for error messages."""

    def __init__(self, path: str) -> None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._file = bz2.BZ2File(path, "wb")
        except OSError as e:
            raise StoreError(
                f"cannot write the build log '{path}': {e.strerror or e} "
                "(give the store a writable log dir: local?…&log=DIR)"
            ) from e
        self.path = path
        self._tail: deque[bytes] = deque()
        self._tail_size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail_size - len(self._tail[0]) > _TAIL_BYTES:
            self._tail_size -= len(self._tail.popleft())

    def tail(self, lines: int = TAIL_LINES) -> str:
        text = b"".join(self._tail).decode("utf-8", "replace")
        return "\n".join(text.rstrip("\n").split("\n")[-lines:]) if text.strip() else ""

    def close(self) -> None:
        self._file.close()
