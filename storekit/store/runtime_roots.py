"""Runtime roots: the store paths running processes use, found in `/proc` as Nix 2.8's GC finds them.

A program started from the store (or holding one of its files open, or mapping one of its libraries)
may be the only user of a path that no GC root keeps alive; deleting it under the process breaks
it. Nix's `findRuntimeRoots` therefore reads, for every process, the `exe` and `cwd` links, every
`fd/*` link, the file names in `maps`, and store paths anywhere in `environ`, plus a few kernel
settings that name programs (`/proc/sys/kernel/modprobe` ...). storekit does the same, for the
logical store dir and, when the store lives elsewhere (`real=`), for the real directory, which is
what the kernel shows for processes that run from it.

Processes come and go while the scan runs, and other users' processes cannot be read without
privileges: every such error is skipped, as Nix skips them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator

from storekit.errors import InvalidStorePath
from storekit.store.local import LocalStore
from storekit.storepath import StorePath

KERNEL_SETTINGS = ("/proc/sys/kernel/modprobe", "/proc/sys/kernel/fbsplash", "/proc/sys/kernel/poweroff_cmd")
"""Programs the kernel itself runs (Nix reads the same three)."""


def store_path_pattern(directories: Iterable[str]) -> re.Pattern[bytes]:
    """Nix's `storePathRegex`: DIR/ then a base-32 hash and the characters a name may hold."""
    alternatives = b"|".join(re.escape(os.fsencode(d.rstrip("/"))) for d in directories)
    return re.compile(b"(?:" + alternatives + rb")/[0-9a-z]+[0-9a-zA-Z+\-._?=]*")


def scan(data: bytes, pattern: re.Pattern[bytes]) -> set[str]:
    """Every store-path-looking string in `data` (environment blocks, `maps` lines, link targets)."""
    return {os.fsdecode(m.group(0)) for m in pattern.finditer(data)}


def _read(path: str) -> bytes:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        return f.read()
    return b""


def _readlink(path: str) -> bytes:
    with contextlib.suppress(OSError):
        return os.fsencode(os.readlink(path))
    return b""


def _process_texts(proc: str, pid: str) -> Iterator[tuple[str, bytes]]:
    """(where, what it holds) for one process: its links, its mapped files, its environment."""
    base = os.path.join(proc, pid)
    for name in ("exe", "cwd"):
        yield f"{base}/{name}", _readlink(f"{base}/{name}")
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"{base}/fd"):
            yield f"{base}/fd/{fd}", _readlink(f"{base}/fd/{fd}")
    yield f"{base}/maps", _read(f"{base}/maps")
    yield f"{base}/environ", _read(f"{base}/environ")


def find_runtime_roots(store: LocalStore, proc: str = "/proc") -> dict[StorePath, set[str]]:
    """Valid paths of `store` that running processes use, each with where it was seen."""
    real, logical = store.real_dir.rstrip("/"), store.store_dir.path
    pattern = store_path_pattern({logical, real})
    found: dict[StorePath, set[str]] = {}
    sources: list[Iterable[tuple[str, bytes]]] = [((k, _read(k)) for k in KERNEL_SETTINGS)]
    with contextlib.suppress(OSError):
        sources += [_process_texts(proc, pid) for pid in os.listdir(proc) if pid.isdigit()]
    for texts in sources:
        for where, data in texts:
            for text in scan(data, pattern):
                if real != logical and text.startswith(real + "/"):
                    text = logical + text[len(real) :]
                with contextlib.suppress(InvalidStorePath):
                    path = store.store_dir.to_store_path(text)[0]
                    if store.is_valid_path(path):
                        found.setdefault(path, set()).add(where)
    return found
