"""The bootstrap profiles storekit ships, as package data, and writing them where a user wants them.

The profiles live once, in the repository's `bootstrap/` (`lfs/mini.toml`, `lfs.toml`,
`lfs-debian.toml`, the generic `builder.sh`, `packages/*.sh`, the verify scripts);
`storekit/bootstrap_profiles` is a symlink to it, so a checkout, an editable install and a wheel
read the same files. Someone who installed storekit with pip or pipx has no checkout:
`storekit bootstrap init DIR` writes the files out. A profile names its builder and scripts relative
to itself, so the copy works wherever it lands.

As `storekit template init` does: a file that already exists with the same bytes is left alone, one
that differs is refused, and every conflict is found before the first byte is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from storekit.errors import FileSystemError, StorekitError


def profiles_root() -> Path:
    """The directory holding `lfs/` (package data)."""
    root = Path(__file__).resolve().parent.parent / "bootstrap_profiles"
    if not (root / "lfs" / "mini.toml").is_file():
        raise StorekitError(f"storekit's bootstrap profiles are missing ({root} has no lfs/mini.toml)")
    return root


def shipped_files() -> dict[str, bytes]:
    """Every shipped file, by its path relative to the root (`lfs/mini.toml` …), in sorted order."""
    root = profiles_root()
    found = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in found}


def write_profiles(dest: str) -> list[str]:
    """Write the shipped files under `dest`; returns the paths written (relative), skipping same ones."""
    files = shipped_files()
    todo: dict[str, bytes] = {}
    for rel, data in files.items():
        target = os.path.join(dest, rel)
        if os.path.lexists(target):
            if not os.path.isfile(target) or Path(target).read_bytes() != data:
                raise FileSystemError(
                    target, f"refusing to overwrite '{target}': it exists and differs from storekit's"
                )
            continue
        todo[rel] = data
    for rel, data in todo.items():
        target = os.path.join(dest, rel)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            temp = f"{target}.tmp-{os.getpid()}"
            with open(temp, "wb") as f:
                f.write(data)
            os.replace(temp, target)
        except OSError as e:
            raise FileSystemError(target, f"cannot write '{target}': {e.strerror or e}") from e
    return list(todo)
