"""Private temporary directories, made without the `tempfile` module.

`tempfile` imports `shutil`, and with it `fnmatch`, `re`, `bz2`, `lzma` and `random`: about 5 ms,
a fifth of the start-up of a `storekit build` that has something to build (`python -m bench
startup`). Build dirs and staging dirs need two of its functions, written here.
"""

from __future__ import annotations

import errno
import os


def temp_root() -> str:
    """Where build dirs go: `$TMPDIR`, else `/tmp`, as Nix's `defaultTempDir`."""
    return os.environ.get("TMPDIR") or "/tmp"


def make_temp_dir(parent: str, prefix: str) -> str:
    """A new directory `<parent>/<prefix><random>`, mode 0700, that nobody else made (as `mkdtemp`).

    `mkdir` fails on any existing entry, a symlink included, so the name is this process's alone."""
    for _ in range(100):
        path = os.path.join(parent, prefix + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return os.path.abspath(path)
    raise FileExistsError(errno.EEXIST, "no unused name for a temporary directory", parent)
