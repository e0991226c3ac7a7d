"""Relocating a whole store path as it streams by: NAR events in, rewritten NAR events out.

Each regular file is gathered (the rules need to see a file whole: an ELF file's headers say where
its strings are), rewritten by `rewrite.rewrite_file` and sent on with its new size; symlink targets
follow the text rules; entry names can only hold hash parts, which keep their length. Nothing is
refused on the spot: every blocker and warning goes into the `PathReport`, so one run names every
file and offset that stands in the way.

For content-addressed mode the report also records where the path's own old hash part ends up
(file offsets and symlinks): once the new name is known, those bytes are patched in place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from storekit.nar.reader import (
    Chunk,
    Directory,
    DirectoryEnd,
    EntryEnd,
    EntryStart,
    NarEvent,
    Regular,
    Symlink,
)
from storekit.relocate.rewrite import rewrite_file
from storekit.relocate.rules import (
    Blocker,
    Rules,
    find_all,
    find_dir,
    replace_hash_parts,
    rewrite_free,
)

RelPath = tuple[bytes, ...]


@dataclass(slots=True)
class PathReport:
    """What relocating one store path found; filled in while its events stream through."""

    blockers: list[Blocker] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    own_hits: dict[RelPath, list[int]] = field(default_factory=dict)
    own_links: dict[RelPath, bytes] = field(default_factory=dict)
    changed: int = 0


def show(rel: RelPath) -> str:
    """A path inside a store path as users see it (`bin/hello`; `` for the store path itself)."""
    return os.fsdecode(b"/".join(rel))


def rewrite_events(
    events: Iterable[NarEvent], rules: Rules, own_hash: bytes | None, report: PathReport
) -> Iterator[NarEvent]:
    """`events` with every file, symlink target and name relocated by `rules`.

    `own_hash` (content-addressed mode) is the path's old hash part, left in place here and located
    in the report; entry names must not contain it (its replacement could reorder a directory).
    """
    names: list[bytes] = []
    last: list[bytes | None] = []  # per open directory: the previous (rewritten) entry name
    regular: Regular | None = None
    parts: list[bytes] = []
    remaining = 0
    for ev in events:
        kind = type(ev)
        if kind is Chunk:
            assert isinstance(ev, Chunk) and regular is not None
            parts.append(ev.data)
            remaining -= len(ev.data)
            if remaining == 0:
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                yield from _file(tuple(names), regular, data, rules, own_hash, report)
                parts, regular = [], None
        elif kind is Regular:
            assert isinstance(ev, Regular)
            if ev.size == 0:
                yield ev
            else:
                regular, remaining = ev, ev.size
        elif kind is EntryStart:
            assert isinstance(ev, EntryStart)
            name = _entry_name(tuple(names), ev.name, last, rules, own_hash, report)
            names.append(name)
            yield EntryStart(0, name)
        elif kind is EntryEnd:
            names.pop()
            yield ev
        elif kind is Symlink:
            assert isinstance(ev, Symlink)
            yield Symlink(0, relocate_target(tuple(names), ev.target, rules, own_hash, report))
        elif kind is Directory:
            last.append(None)
            yield ev
        else:
            assert kind is DirectoryEnd
            last.pop()
            yield ev


def _file(
    rel: RelPath, ev: Regular, data: bytes, rules: Rules, own_hash: bytes | None, report: PathReport
) -> Iterator[NarEvent]:
    out, _ = relocate_contents(rel, data, rules, own_hash, report)
    yield Regular(0, ev.executable, len(out), 0)
    yield Chunk(0, out)


def relocate_contents(
    rel: RelPath, data: bytes, rules: Rules, own_hash: bytes | None, report: PathReport
) -> tuple[bytes, list[int]]:
    """A regular file's new contents and the offsets of `own_hash` in them (also noted in `report`)."""
    outcome = rewrite_file(show(rel), data, rules)
    report.blockers += outcome.blockers
    report.warnings += outcome.warnings
    out = data if outcome.data is None else outcome.data
    if out != data:
        report.changed += 1
    if not outcome.blockers and rules.moves_dir:
        for i in find_dir(out, rules.old_dir):
            report.blockers.append(Blocker(show(rel), i, "internal error: the old store dir is still here"))
    hits = find_all(out, own_hash) if own_hash is not None else []
    if hits:
        report.own_hits[rel] = hits
    return out, hits


def relocate_target(
    rel: RelPath, target: bytes, rules: Rules, own_hash: bytes | None, report: PathReport
) -> bytes:
    """A symlink's new target (text rules); noted in `report` if it holds `own_hash`."""
    new = rewrite_free(target, rules)
    if own_hash is not None and own_hash in new:
        report.own_links[rel] = new
    if new != target:
        report.changed += 1
    return new


def _entry_name(
    parent: RelPath,
    name: bytes,
    last: list[bytes | None],
    rules: Rules,
    own_hash: bytes | None,
    report: PathReport,
) -> bytes:
    new = replace_hash_parts(name, rules.hash_parts)
    check_entry_name((*parent, new), last[-1], own_hash, report)
    last[-1] = new
    return new


def entry_names(
    parent: RelPath, names: list[bytes], rules: Rules, own_hash: bytes | None, report: PathReport
) -> list[tuple[bytes, bytes]]:
    """A directory's sorted entry names, each with its new name (only hash parts can change)."""
    pairs = [(n, replace_hash_parts(n, rules.hash_parts)) for n in sorted(names)]
    previous: bytes | None = None
    for _, new in pairs:
        check_entry_name((*parent, new), previous, own_hash, report)
        previous = new
    return pairs


def check_entry_name(
    rel: RelPath, previous: bytes | None, own_hash: bytes | None, report: PathReport
) -> None:
    """Names must keep their order (a NAR lists them sorted) and not hold the own hash part."""
    if own_hash is not None and own_hash in rel[-1]:
        why = "the entry name holds the path's own hash part, whose replacement could reorder the directory"
        report.blockers.append(Blocker(show(rel), 0, why))
    if previous is not None and rel[-1] <= previous:
        report.blockers.append(
            Blocker(show(rel), 0, "renaming the hash parts in entry names reorders the directory")
        )
