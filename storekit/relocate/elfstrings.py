"""Relocating an ELF file: in place where the length allows, through the ELF editor where it must grow.

Every occurrence of the old store dir first gets the binary rules of `rewrite` (same length, padding
with `/`, or the room of earlier padding), which never move a byte. What is left would have to grow:
that is possible only for the strings the dynamic loader reads, the interpreter and the dynamic
entries (rpath/runpath, needed, soname), because the ELF editor can move them to a grown string
table or interpreter. Their new values are computed from the current bytes, the old bytes are
overwritten with `/` of the same length (so no byte of the old store dir survives in the dead copy
the editor leaves behind), and the editor's patch is assembled in memory, read back and checked.
Any other occurrence that would grow (code, `.rodata`, debug info) is refused with its section.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from storekit.elf import Edit, ReplaceNeeded, SetInterpreter, SetRpath, SetSoname, parse, plan
from storekit.elf.format import DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, PT_INTERP
from storekit.elf.inspect import ElfFile
from storekit.elf.layout import Copy, Fill, Zeros
from storekit.elf.patch import Patch
from storekit.elf.ungrow import original_layout
from storekit.elf.versions import dynsym_count, symbol_name_offsets
from storekit.errors import ElfError
from storekit.relocate.rules import (
    Blocker,
    Outcome,
    Rules,
    find_dir,
    replace_hash_parts,
    rewrite_free,
    rewrite_in_place,
    unsafe_or_blocked,
)

_RPATHS = (DT_RPATH, DT_RUNPATH)


@dataclass(frozen=True, slots=True)
class _String:
    """A string the loader reads: where it lies in the file and which dynamic tag (0: interpreter)."""

    start: int
    end: int
    tag: int


def rewrite_elf(name: str, data: bytes, rules: Rules) -> Outcome:
    hashed = replace_hash_parts(data, rules.hash_parts)
    hits = find_dir(hashed, rules.old_dir)
    if not hits:
        return Outcome(None if hashed is data else hashed, "elf")
    ungrown = _ungrow(name, hashed, hits, rules) if rules.growth < 0 else None
    if ungrown is not None:
        return Outcome(ungrown, "elf")
    buf = bytearray(hashed)
    pending = rewrite_in_place(buf, hits, rules)
    if not pending:
        return Outcome(bytes(buf), "elf")
    current = bytes(buf)
    try:
        elf = parse(current, name)
    except ElfError as e:
        why = f"the store dir would grow by {rules.growth} bytes in an ELF file that cannot be parsed ({e})"
        return unsafe_or_blocked(name, current, pending, why, rules, "elf")
    strings = _loader_strings(elf)
    n = len(rules.old_dir)
    blockers = [_outside(elf, name, i, rules) for i in pending if _owner(strings, i, n) is None]
    if blockers:
        return _blocked(name, current, pending, blockers, rules)
    try:
        return Outcome(_grow_strings(elf, buf, pending, strings, rules), "elf")
    except ElfError as e:
        why = f"the ELF editor cannot grow the string holding it: {str(e).removeprefix(name + ': ')}"
        return _blocked(name, current, pending, [Blocker(name, pending[0], why)], rules)


def _blocked(name: str, data: bytes, pending: list[int], blockers: list[Blocker], rules: Rules) -> Outcome:
    if not rules.unsafe:
        return Outcome(None, "elf", tuple(blockers))
    forced = unsafe_or_blocked(name, data, pending, blockers[0].why, rules, "elf")
    return Outcome(forced.data, "elf", (), forced.warnings)


def _loader_strings(elf: ElfFile) -> list[_String]:
    out: list[_String] = []
    interp = elf.segment(PT_INTERP)
    if interp is not None and elf.interpreter is not None:
        out.append(_String(interp.offset, interp.offset + len(elf.interpreter), 0))
    for d in elf.dynamic:
        if d.tag in (DT_NEEDED, DT_SONAME, *_RPATHS):
            start = elf.strtab_offset + d.val
            out.append(_String(start, start + len(elf.string(d.val)), d.tag))
    return out


def _owner(strings: list[_String], i: int, n: int) -> _String | None:
    return next((s for s in strings if s.start <= i and i + n <= s.end), None)


def _outside(elf: ElfFile, name: str, i: int, rules: Rules) -> Blocker:
    where = _section_name(elf, i)
    return Blocker(
        name,
        i,
        f"the store dir would grow by {rules.growth} bytes in {where} of an ELF file "
        "(only the interpreter and the rpath, runpath, needed and soname entries can grow)",
    )


def _section_name(elf: ElfFile, offset: int) -> str:
    index = elf.header.shstrndx
    for s in elf.sections:
        if s.in_file and s.offset <= offset < s.offset + s.size:
            if 0 < index < len(elf.sections):
                table = elf.sections[index]
                start = table.offset + s.name
                end = elf.data.find(b"\0", start, table.offset + table.size)
                if end > start:
                    return "section " + bytes(elf.data[start:end]).decode("ascii", "replace")
            return "an unnamed section"
    return "data outside every section"


def _grow_strings(
    elf: ElfFile, buf: bytearray, pending: list[int], strings: list[_String], rules: Rules
) -> bytes:
    """Erase the pending occurrences, then let the ELF editor place the grown strings."""
    n = len(rules.old_dir)
    owners = {s for i in pending if (s := _owner(strings, i, n)) is not None}
    _check_no_symbol_inside(elf, pending, n)
    new_values = {s: rewrite_free(bytes(buf[s.start : s.end]), rules) for s in owners}
    for i in pending:
        buf[i : i + n] = b"/" * n
    edits = _edits(elf, buf, strings, new_values)
    erased = bytes(buf)
    patch = plan(parse(erased, elf.path), edits)
    result = assemble(erased, patch)
    # a bug in the ELF editor, not a file to refuse: an AssertionError keeps its traceback
    if parse(result, elf.path).facts() != patch.expected:
        raise AssertionError(f"{elf.path}: the grown file does not read back as planned")
    if find_dir(result, rules.old_dir):
        raise AssertionError(f"{elf.path}: the old store dir is still in the grown file")
    return result


def _edits(
    elf: ElfFile, buf: bytes | bytearray, strings: list[_String], new_values: dict[_String, bytes]
) -> list[Edit]:
    edits: list[Edit] = []
    rpaths = {s for s in strings if s.tag in _RPATHS}
    for s, value in sorted(new_values.items(), key=lambda kv: kv[0].start):
        text = os.fsdecode(value)
        if s.tag == 0:
            edits.append(SetInterpreter(text))
        elif s.tag in _RPATHS:
            if len({(r.start, r.end) for r in rpaths}) > 1:
                raise ElfError(elf.path, "it has several different DT_RPATH/DT_RUNPATH entries")
            edits.append(SetRpath(text))
        elif s.tag == DT_NEEDED:
            edits.append(ReplaceNeeded(os.fsdecode(bytes(buf[s.start : s.end])), text))
        else:
            edits.append(SetSoname(text))
    return edits


def _ungrow(name: str, data: bytes, hits: list[int], rules: Rules) -> bytes | None:
    """A file an earlier relocation grew, given back its original layout when the strings fit again.

    The growth erased the old store dir in the original tables it left behind; when the new store
    dir is the one erased there (relocating A -> longer B -> A), the new strings are written back
    over their erased copies and the ELF editor cuts the file back to its original layout: the
    original bytes. None when the file was not grown, or when anything does not fit exactly.
    """
    try:
        elf = parse(data, name)
        orig = original_layout(elf)
        strings = _loader_strings(elf)
    except ElfError:
        return None
    n = len(rules.old_dir)
    owners = {s for i in hits if (s := _owner(strings, i, n)) is not None}
    if orig is None or any(_owner(strings, i, n) is None for i in hits):
        return None
    new_values = {s: rewrite_free(data[s.start : s.end], rules) for s in owners}
    unerased = bytearray(data)
    for place in orig.places.values():
        region = data[place.offset : place.offset + place.size]
        for value in new_values.values():
            erased = bytearray(value)
            for i in find_dir(value, rules.new_dir):
                erased[i : i + len(rules.new_dir)] = b"/" * len(rules.new_dir)
            at = region.find(bytes(erased) + b"\0")
            if at >= 0:
                unerased[place.offset + at : place.offset + at + len(value)] = value
    try:
        patch = plan(parse(bytes(unerased), name), _edits(elf, data, strings, new_values))
        result = assemble(bytes(unerased), patch)
        done = parse(result, name)
        if done.facts() != patch.expected or original_layout(done) is not None or len(result) >= len(data):
            return None
    except ElfError:
        return None
    return None if find_dir(result, rules.old_dir) else result


def _check_no_symbol_inside(elf: ElfFile, pending: list[int], n: int) -> None:
    """A symbol name that starts inside an erased occurrence (a tail-merged string) would change."""
    count = dynsym_count(elf)
    if count is None or elf.strtab_offset < 0:
        return
    starts = {elf.strtab_offset + r for r in symbol_name_offsets(elf, count)}
    for i in pending:
        if any(i <= s < i + n for s in starts):
            raise ElfError(elf.path, f"a symbol name shares the bytes at offset {i} (a tail-merged string)")


def assemble(data: bytes, patch: Patch) -> bytes:
    """The patched file in memory, built as `storekit.elf.fs` builds it on disk."""
    if patch.pieces is None:
        out = bytearray(data)
    else:
        out = bytearray()
        for p in patch.pieces:
            if isinstance(p, Copy):
                out += data[p.offset : p.offset + p.length]
            elif isinstance(p, Fill):
                out += p.data
            elif isinstance(p, Zeros):
                out += bytes(p.length)
    for offset, chunk in patch.writes:
        if len(out) < offset + len(chunk):
            out += bytes(offset + len(chunk) - len(out))
        out[offset : offset + len(chunk)] = chunk
    if len(out) < patch.size:
        out += bytes(patch.size - len(out))
    del out[patch.size :]
    return bytes(out)
