"""Deleting store paths and staging leftovers, whatever their depth and whatever they hold.

A store path's tree comes from a NAR, a cache or a builder, so it may be 100,000 directories deep, hold
unreadable directories or have a directory swapped for a symlink. `remove_tree` walks it iteratively
relative to directory descriptors, never following a symlink (`storekit.fdtree`, which NAR restore
also uses to undo a failed restore), and counts the bytes freed like Nix's `deletePath`.
"""

from __future__ import annotations

import os

from storekit import fdtree


def remove_tree(path: str | os.PathLike[str]) -> int:
    """Delete `path` (a file, symlink or tree; missing is fine); returns the bytes it likely freed."""
    return fdtree.remove_tree(path)
