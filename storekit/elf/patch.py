"""Plan an edit of an ELF file, purely: a parsed file and edits in, a `Patch` (bytes to write) out.

Nothing is written here. A patch is either a few writes at fixed offsets (the file keeps its size:
strings fit in place, the dynamic section has room) or a list of pieces that assemble a grown file
(see `layout`). Every refusal happens while planning, so a refused file is never touched, and a plan
that changes nothing is empty, so a no-op edit leaves the file byte-for-byte (and mtime) as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from storekit.elf import extras, strtab, symbols, ungrow, versions
from storekit.elf.edits import Desired, Edit, ExtraEdit, apply
from storekit.elf.format import (
    DT_NEEDED,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_STRTAB,
    DT_VERNEED,
    DT_VERNEEDNUM,
    PT_INTERP,
    SHT_DYNAMIC,
    SHT_DYNSYM,
    SHT_GNU_VERDEF,
    SHT_GNU_VERNEED,
    SHT_STRTAB,
    STRING_TAGS,
    Dyn,
    Shdr,
)
from storekit.elf.inspect import ElfFacts, ElfFile, dynamic_capacity
from storekit.elf.layout import Movable, Piece, Write, grow, is_self_relative, item_writes


@dataclass(frozen=True, slots=True)
class Patch:
    """What to write: `writes` at offsets of the result; `pieces` assemble a new file when it grows."""

    path: str
    writes: tuple[Write, ...]
    pieces: tuple[Piece, ...] | None
    size: int
    expected: ElfFacts  # what the file says afterwards: checked after writing, before replacing

    @property
    def is_noop(self) -> bool:
        return not self.writes and self.pieces is None

    @property
    def in_place(self) -> bool:
        return self.pieces is None


@dataclass(frozen=True, slots=True)
class _Versions:
    """The VERNEED rewrite a removal or rename needs; its records are packed once strings are placed."""

    table: versions.VerneedTable | None  # None: the records stay as they are
    kept: tuple[versions.Verneed, ...]
    renamed: dict[int, bytes]  # vn_file offset -> new library name
    writes: list[Write]  # .gnu.version fixups
    sections: dict[int, Shdr]
    kept_refs: list[int]

    def requests(self) -> list[strtab.Request]:
        return [strtab.Request(old, new) for old, new in self.renamed.items()]

    def records(self, offsets: dict[bytes, int], little: bool) -> list[Write]:
        if self.table is None:
            return []
        entries = [
            replace(e, file=offsets[self.renamed[e.file]]) if e.file in self.renamed else e for e in self.kept
        ]
        data = versions.pack_verneed(little, entries)
        return [(self.table.offset, data + bytes(self.table.extent - len(data)))]


def plan(elf: ElfFile, edits: Sequence[Edit]) -> Patch:
    """What to write so that `elf` says what `edits` ask; `ElfPatchError` for edits it cannot take."""
    state = Desired.of(elf)
    for edit in edits:
        if isinstance(edit, ExtraEdit):  # patchelf's rarer edits live apart from the common ones
            extras.apply(elf, state, edit)
        else:
            apply(elf, state, edit)
    if state.unchanged(elf):
        return Patch(elf.path, (), None, elf.size, _expected(elf, state))
    ungrown = None if state.writes or state.renames else ungrow.plan_ungrow(elf, state, _expected(elf, state))
    if ungrown is not None:  # a file storekit grew, cut back
        return Patch(elf.path, ungrown.writes, ungrown.pieces, ungrown.size, _expected(elf, state))
    vers = _versions(elf, state)
    requests = vers.requests()
    for e in state.entries:
        if e.text is not None and not e.unchanged_string:
            requests.append(strtab.Request(e.val if e.orig_text is not None else None, e.text))
    requests += [strtab.Request(None, name) for name in dict.fromkeys(state.renames.values())]
    table = (
        bytes(elf.data[elf.strtab_offset : elf.strtab_offset + elf.strtab_size])
        if elf.strtab_offset >= 0
        else b"\0"
    )
    strings = strtab.place(
        table, requests, lambda: _kept_refs(elf, state, vers), lambda: ungrow.table_room(elf)
    )
    dynamic = [
        Dyn(e.tag, e.val if e.text is None or e.unchanged_string else strings.offsets[e.text])
        for e in state.entries
    ]
    dynamic = _absolute(elf, state, dynamic)
    dynamic = _fix_verneednum(dynamic, vers)
    interp_seg = elf.segment(PT_INTERP)
    interp_changed = state.interp != state.orig_interp
    interp_grew = (
        interp_changed and interp_seg is not None and len(state.interp or b"") + 1 > interp_seg.filesz
    )
    # (a dynamic segment without bytes, in a debug file or from a linker script, is never edited)
    dynamic_grew = elf.has_dynamic_bytes and len(dynamic) + 1 > dynamic_capacity(elf)
    moved = Movable(tuple(dynamic), dynamic_grew, strings.writes, strings.grown, state.interp, interp_grew)
    expected = _expected(elf, state)
    fixed = vers.writes + vers.records(strings.offsets, elf.codec.little) + sorted(state.writes.items())
    if state.renames:
        fixed += symbols.rename_writes(elf, state.renames, strings.offsets)
    if strings.grown is None and not dynamic_grew and not interp_grew:
        writes = _in_place(elf, moved, fixed, vers.sections)
        return Patch(elf.path, tuple(writes), None, elf.size, expected)
    grown = grow(elf, moved, fixed, vers.sections)
    return Patch(elf.path, grown.writes, grown.pieces, grown.size, expected)


def _versions(elf: ElfFile, state: Desired) -> _Versions:
    """Drop the VERNEED entries of removed libraries and rename those of replaced ones."""
    table = versions.read_verneed(elf) if state.removed_libs or state.renamed_libs else None
    if table is None:
        return _Versions(None, (), {}, [], {}, [])
    kept: list[versions.Verneed] = []
    renamed: dict[int, bytes] = {}
    refs: list[int] = []
    dropped: set[int] = set()
    for entry in table.entries:
        name = elf.string(entry.file)
        if name in state.removed_libs:
            dropped |= {a.other for a in entry.auxes}
            continue
        if name in state.renamed_libs:
            renamed[entry.file] = state.renamed_libs[name]
        else:
            refs.append(entry.file)
        refs.extend(a.name for a in entry.auxes)
        kept.append(entry)
    if not dropped and len(kept) == len(table.entries) and not renamed:
        return _Versions(None, (), {}, [], {}, refs)
    writes = _versym_writes(elf, dropped) if dropped else []
    return _Versions(table, tuple(kept), renamed, writes, _verneed_section(elf, len(kept)), refs)


def _verneed_section(elf: ElfFile, count: int) -> dict[int, Shdr]:
    addr = elf.tag(DT_VERNEED)
    for i, s in enumerate(elf.sections):
        if s.type == SHT_GNU_VERNEED and s.addr == addr:
            return {i: s._replace(info=count)}
    return {}


def _versym_writes(elf: ElfFile, dropped: set[int]) -> list[Write]:
    """Symbols versioned by a removed library's records become unversioned (VER_NDX_GLOBAL)."""
    count = versions.dynsym_count(elf) or 0
    offset = versions.versym_offset(elf, count)
    if offset is None:
        return []
    out = []
    for i in range(count):
        if elf.codec.u16(elf.data, offset + 2 * i) & 0x7FFF in dropped:
            out.append((offset + 2 * i, elf.codec.pack_u16(versions.VER_NDX_GLOBAL)))
    return out


def _absolute(elf: ElfFile, state: Desired, dynamic: list[Dyn]) -> list[Dyn]:
    """Self-relative entries (MIPS's DT_MIPS_RLD_MAP_REL) as absolute addresses until their final
    place is known (`layout.self_relative`): entries shift, and the dynamic section may move."""
    seg = elf.dynamic_segment
    if seg is None:
        return dynamic
    entsize = elf.codec.st("dyn").size
    mask = (1 << (8 * elf.codec.word)) - 1
    return [
        Dyn(d.tag, (seg.vaddr + e.orig * entsize + d.val) & mask)
        if e.orig is not None and is_self_relative(elf, d.tag)
        else d
        for d, e in zip(dynamic, state.entries, strict=True)
    ]


def _fix_verneednum(dynamic: list[Dyn], vers: _Versions) -> list[Dyn]:
    if vers.table is None:
        return dynamic
    count = len(vers.kept)
    if count == 0:
        return [d for d in dynamic if d.tag not in (DT_VERNEED, DT_VERNEEDNUM)]
    return [Dyn(d.tag, count) if d.tag == DT_VERNEEDNUM else d for d in dynamic]


def _kept_refs(elf: ElfFile, state: Desired, vers: _Versions) -> set[int]:
    """Every string offset that stays referenced: untouched entries, symbols, version records."""
    # Untouched entries, also those naming strings storekit never edits (DT_AUDIT, DT_FILTER, …).
    refs = [e.val for e in state.entries if e.unchanged_string or (e.text is None and e.tag in STRING_TAGS)]
    if vers.table is None and not vers.kept_refs:  # no VERNEED edit: every record is kept
        table = versions.read_verneed(elf)
        for entry in table.entries if table is not None else ():
            refs += [entry.file, *(a.name for a in entry.auxes)]
    refs += vers.kept_refs
    refs += versions.verdef_names(elf)
    count = versions.dynsym_count(elf)
    if count is None or _unknown_users(elf):  # references we cannot enumerate: keep every byte
        return set(range(elf.strtab_size))
    kept = set(versions.symbol_name_offsets(elf, count))
    kept.update(refs)
    return kept


def _unknown_users(elf: ElfFile) -> bool:
    """Whether a section of a kind not read here (e.g. prelink's .gnu.liblist) names dynamic strings."""
    table = next(
        (i for i, s in enumerate(elf.sections) if s.addr == elf.tag(DT_STRTAB) and s.type == SHT_STRTAB), None
    )
    known = (SHT_DYNSYM, SHT_DYNAMIC, SHT_GNU_VERDEF, SHT_GNU_VERNEED)
    return table is not None and any(s.link == table and s.type not in known for s in elf.sections if s.type)


def _in_place(elf: ElfFile, m: Movable, fixed: list[Write], sections: dict[int, Shdr]) -> list[Write]:
    out = item_writes(elf, m, list(m.dynamic), set()) + fixed
    for i, s in sections.items():
        out.append((elf.header.shoff + i * elf.header.shentsize, s.pack(elf.codec)))
    return [(o, d) for o, d in out if bytes(elf.data[o : o + len(d)]) != d]


def _expected(elf: ElfFile, state: Desired) -> ElfFacts:
    def text(raw: bytes | None) -> str | None:
        return None if raw is None else raw.decode("utf-8", "surrogateescape")

    def first(tag: int) -> str | None:
        found = state.texts(tag)
        return text(found[0]) if found else None

    return ElfFacts(
        *elf.identity(),
        interpreter=text(state.interp),
        rpath=first(DT_RPATH),
        runpath=first(DT_RUNPATH),
        needed=tuple(s.decode("utf-8", "surrogateescape") for s in state.texts(DT_NEEDED)),
        soname=first(DT_SONAME),
    )
