"""Whole-tree prefix rewriting in one process: every ELF file under some paths, non-ELF files skipped.

Speed comes from what is not done: four bytes tell a non-ELF file apart; an ELF file is mapped, not
read, and only its headers, dynamic section and strings are parsed (no pyelftools); a replacement of
the same length (or shorter, when no tail-merged string shares the bytes) is a few pwrite calls into
the file instead of rewriting it. Files that must grow go through the same all-or-nothing path as
single edits. Every file gets an outcome; refusals carry the reason and never stop the walk.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from storekit.elf.edits import RewritePrefix
from storekit.elf.fs import edit_file, is_elf_file
from storekit.errors import ElfError
from storekit.progress import Progress, ProgressEvent


@dataclass(frozen=True, slots=True)
class TreeReport:
    changed: tuple[str, ...]
    unchanged: int  # ELF files with nothing under the old prefix
    not_elf: int
    refused: tuple[tuple[str, str], ...]  # (file, why)

    def summary(self) -> str:
        return (
            f"{len(self.changed)} changed, {self.unchanged} unchanged, "
            f"{self.not_elf} not ELF, {len(self.refused)} refused"
        )


def rewrite_prefix(
    roots: Sequence[str],
    old: str,
    new: str,
    progress: Progress | None = None,
    *,
    atomic: bool = True,
) -> TreeReport:
    """Replace the leading directory `old` by `new` in interpreters, rpaths and absolute NEEDED names.

    `atomic` is passed to `edit_file`: it matters only for files that must grow.
    """
    edit = [RewritePrefix(old, new)]
    changed: list[str] = []
    refused: list[tuple[str, str]] = []
    unchanged = not_elf = 0
    for done, path in enumerate(_files(roots)):
        if progress is not None:
            progress(ProgressEvent("patch", done, unit="files", item=path))
        if not is_elf_file(path):
            not_elf += 1
            continue
        try:
            result = edit_file(path, edit, atomic=atomic)
        except ElfError as e:
            reason = str(e)
            refused.append((path, reason.removeprefix(f"{e.path}: ")))
            continue
        if result.outcome == "unchanged":
            unchanged += 1
        else:
            changed.append(path)
    return TreeReport(tuple(changed), unchanged, not_elf, tuple(refused))


def _files(roots: Sequence[str]) -> Iterator[str]:
    """Regular files under `roots` in a stable order; symbolic links are not followed."""
    for root in roots:
        try:
            st = os.lstat(root)
        except OSError as e:
            raise ElfError(root, f"cannot read: {e.strerror}") from e
        if stat.S_ISREG(st.st_mode):
            yield root
        elif stat.S_ISDIR(st.st_mode):
            yield from _walk(root)


def _walk(directory: str) -> Iterator[str]:
    """Files under `directory` in sorted pre-order, with an explicit stack (depth is input)."""
    stack = [_entries(directory)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
        elif entry.is_dir(follow_symlinks=False):
            stack.append(_entries(entry.path))
        elif entry.is_file(follow_symlinks=False):
            yield entry.path


def _entries(directory: str) -> Iterator[os.DirEntry[str]]:
    try:
        return iter(sorted(os.scandir(directory), key=lambda e: e.name))
    except OSError as e:
        raise ElfError(directory, f"cannot list: {e.strerror}") from e
