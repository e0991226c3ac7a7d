"""Finding a program on `PATH` (`shutil.which` for the commands storekit starts: bwrap, pasta, env …).

`shutil` imports `fnmatch`, `re`, `bz2` and `lzma`: about 3 ms of every `storekit build` that
builds, for one function (`python -m bench startup`). This is that function for POSIX.
"""

from __future__ import annotations

import os
import stat


def which(name: str, path: str | None = None) -> str | None:
    """The first executable regular file `name` in `path` (default `$PATH`, else `os.defpath`); a
    name with a slash is taken as it is. None when there is none."""
    if "/" in name:
        return name if _runnable(name) else None
    for directory in (path if path is not None else os.environ.get("PATH", os.defpath)).split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if _runnable(candidate):
            return candidate
    return None


def _runnable(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode) and os.access(path, os.X_OK)
    except OSError:
        return False
