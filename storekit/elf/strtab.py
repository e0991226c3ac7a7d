"""Where new strings go in the dynamic string table: reuse, overwrite in place, or append to a copy.

Linkers tail-merge strings: a symbol name may be the last bytes of an rpath (patchelf #162), so an old
string can be overwritten only when every reference that is kept (symbols, version records, untouched
dynamic entries) still reads the same bytes afterwards. When a string fits nowhere, the table is copied
with the new strings appended: every old offset stays valid, so nothing else needs repointing but
DT_STRTAB/DT_STRSZ. The copy drops the unreferenced tail of the old table but the strings this edit
gives up (kept once, as `X`s, as patchelf leaves them), so that repeated edits do not make it grow
without bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

_MAX_FIND = 64  # occurrences of a string tried before giving up on reusing it


@dataclass(frozen=True, slots=True)
class Request:
    """A reference that must read `new`; `old` is the offset it points at now (None for a new one)."""

    old: int | None
    new: bytes


@dataclass(frozen=True, slots=True)
class StringPlan:
    offsets: dict[bytes, int]  # where each requested string is now
    writes: tuple[tuple[int, bytes], ...]  # in-place overwrites, relative to the table start
    grown: bytes | None  # the whole new table when some string did not fit in place


def place(
    table: bytes,
    requests: Sequence[Request],
    kept_refs: Callable[[], AbstractSet[int]],
    floor: Callable[[], int] = lambda: 0,
) -> StringPlan:
    """Place every requested string; `kept_refs` (computed only when needed) must stay intact.

    A grown copy keeps at least `floor()` bytes of the old table (padded with zeros) before the new
    strings: the original table's room, so that un-growing can take the original back from it."""
    wanted = list(dict.fromkeys(r.new for r in requests))
    slots = _slots(table, requests)
    offsets: dict[bytes, int] = {}
    for w in wanted:
        found = _find(table, w, slots)
        if found is not None:
            offsets[w] = found
    pending = [w for w in wanted if w not in offsets]
    writes: list[tuple[int, bytes]] = []
    used: list[tuple[int, int]] = []
    kept: AbstractSet[int] | None = None
    for w in sorted(pending, key=len, reverse=True):
        own = [r.old for r in requests if r.new == w and r.old is not None]
        for start in dict.fromkeys([*own, *slots]):
            old = slots[start]
            if len(w) > len(old) or any(start <= e and s <= start + len(old) for s, e in used):
                continue
            if kept is None:
                kept = kept_refs()
            padded = w + b"\0" * (len(old) - len(w))
            if not _inside_kept(table, kept, start) and _keeps_refs(kept, start, old, padded):
                offsets[w] = start
                writes.append((start, padded))
                used.append((start, start + len(old)))
                break
    if all(w in offsets for w in wanted):
        done = {start for start, _ in writes}
        idle = {k: v for k, v in slots.items() if k not in done}
        if idle:  # given-up strings not overwritten: cleared (kept tails stay)
            kept = kept if kept is not None else kept_refs()
            writes += _clear(table, idle, kept, set(offsets.values()))
        return StringPlan(offsets, tuple(writes), None)
    return _grow(table, wanted, slots, kept if kept is not None else kept_refs(), floor())


def _clear(
    table: bytes, slots: dict[int, bytes], kept: AbstractSet[int], used: AbstractSet[int]
) -> list[tuple[int, bytes]]:
    """`X`s over the strings no reference reads any more, up to the first byte one still does.

    A string a file no longer uses must not stay behind: a reference scan (Nix's, storekit's) would
    still find the store path in it and keep a dependency the program no longer has. `X`s, as
    patchelf writes: the table keeps its shape (un-growing finds the place again, see `ungrow`).
    """
    out: list[tuple[int, bytes]] = []
    for start, old in slots.items():
        if _inside_kept(table, kept | used, start):
            continue  # the tail of a string still read from its start: all of it stays
        end = start + len(old)
        stop = next((i for i in range(start, end) if i in kept or i in used), end)
        if stop > start:
            out.append((start, TAINT * (stop - start)))
    return out


TAINT = b"X"


def _slots(table: bytes, requests: Sequence[Request]) -> dict[int, bytes]:
    """The old strings that edited references give up: candidates for overwriting."""
    slots: dict[int, bytes] = {}
    for r in requests:
        if r.old is not None and r.old not in slots and 0 <= r.old < len(table):
            end = table.find(b"\0", r.old)
            slots[r.old] = table[r.old : end if end >= 0 else len(table)]
    return slots


def _find(table: bytes, w: bytes, slots: dict[int, bytes]) -> int | None:
    """An existing occurrence of `w` (possibly the tail of a longer string) outside every slot."""
    needle = w + b"\0"
    pos = table.find(needle)
    for _ in range(_MAX_FIND):
        if pos < 0:
            return None
        end = pos + len(w)
        if not any(pos <= s + len(old) and s <= end for s, old in slots.items()):
            return pos
        pos = table.find(needle, pos + 1)
    return None


def _inside_kept(table: bytes, kept: AbstractSet[int], start: int) -> bool:
    """Whether the string at `start` is the tail of one a kept reference reads from an earlier byte
    (a linker's tail merging: a soname "1" may be the end of "libans.so.1")."""
    i = start - 1
    while i >= 0 and table[i] != 0:
        if i in kept:
            return True
        i -= 1
    return False


def _keeps_refs(kept: AbstractSet[int], start: int, old: bytes, padded: bytes) -> bool:
    """Whether every kept reference into [start, start+len(old)] reads the same string afterwards."""
    if start in kept:
        return False
    return all(padded[i:] == old[i:] for i in range(1, len(old) + 1) if start + i in kept)


def _grow(
    table: bytes, wanted: list[bytes], slots: dict[int, bytes], kept: AbstractSet[int], floor: int
) -> StringPlan:
    """The table copied (up to its last kept string, at least `floor` bytes: zeros past its end)
    with the strings that fit nowhere appended; the given-up strings past the kept part follow it
    once, as `X`s."""
    keep = 1
    if kept:
        top = max(kept)
        end = table.find(b"\0", top)
        keep = max(keep, (end if end >= 0 else len(table) - 1) + 1)
    keep = max(keep, min(floor, len(table)))
    dead = _clear(table, slots, kept, set())
    # the strings given up past the kept part stay once, tainted and packed: what patchelf leaves
    # (its suite checks the taint), without the table growing by every earlier edit's leftovers
    tail = b"".join(taint + b"\0" for start, taint in dead if start >= keep)
    base = max(keep + len(tail), floor)
    offsets: dict[bytes, int] = {}
    appended = bytearray()
    for w in wanted:
        found = _find(table, w, slots)
        if found is not None and found + len(w) < keep:
            offsets[w] = found
            continue
        offsets[w] = base + len(appended)
        appended += w + b"\0"
    dead = _clear(table, slots, kept, {o for o in offsets.values() if o < keep})
    copy = bytearray(table[:keep]) + tail + bytes(base - keep - len(tail))
    for start, taint in dead:
        if start < keep:
            n = min(len(taint), keep - start)
            copy[start : start + n] = taint[:n]
    return StringPlan(offsets, (), bytes(copy) + bytes(appended))
