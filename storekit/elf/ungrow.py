"""Un-growing: giving a file that storekit grew its original layout back when the strings fit again.

Growth (see `layout`) leaves the original dynamic section, string table and interpreter where they
were and points the headers at new copies at the end of the last segment. Going back to strings that
the original tables hold (relocating A -> longer B -> A), writing them in place into the grown copies
would keep the grown layout forever; instead the old places are found again and the file is cut
back: the last PT_LOAD's sizes, PT_DYNAMIC/PT_INTERP and the moved section headers are restored, the
unmapped sections move back up and the file is truncated, giving byte for byte the file from before
the growth when the strings are the original ones.

Nothing records the original layout: it is recomputed from what growth keeps. A moved section keeps
its place in the section header table, so its old place is the gap between its neighbours there; the
segment's old sizes are the ends of the sections that never move; the unmapped rest moved by an
amount fixed by its alignment. Each deduction is checked against the file (the gap holds nothing
else, the tail starts where growth puts it, the bytes dropped are zeros, every string still
referenced reads the same in the old table) and the result is parsed and compared with the plan, so
a file that does not match exactly is not un-grown: the caller then edits it as usual, in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from storekit.elf.edits import Desired
from storekit.elf.format import (
    DT_STRSZ,
    DT_STRTAB,
    PT_DYNAMIC,
    PT_GNU_RELRO,
    PT_INTERP,
    PT_LOAD,
    SHF_ALLOC,
    SHF_TLS,
    SHT_STRTAB,
    Dyn,
    Phdr,
    Shdr,
    align_up,
)
from storekit.elf.inspect import ElfFacts, ElfFile, parse
from storekit.elf.layout import (
    Copy,
    Piece,
    Write,
    Zeros,
    fixed_end,
    is_self_relative,
    last_load,
    layout_items,
    pack_dynamic_over,
)
from storekit.elf.ungrow_strings import names_string, refs_agree, string_at, strings_in_original
from storekit.errors import ElfError


@dataclass(frozen=True, slots=True)
class Place:
    """Where a moved item was before growth: address, file offset, size."""

    vaddr: int
    offset: int
    size: int
    room: int = 0  # bytes up to the next section (a table's size is ambiguous in its padding)
    content: bytes | None = None  # a cleared table's bytes, taken from its grown copy


@dataclass(frozen=True, slots=True)
class Original:
    """The layout before growth, as far as it differs from the grown file's."""

    seg_index: int
    filesz: int
    memsz: int
    places: dict[str, Place]  # the moved items ("dynamic", "table", "interp")
    sections: dict[str, int]  # item -> section index
    rest_old: int  # where the unmapped rest began before growth
    rest_new: int  # where it begins now (its leading zero padding may be gone: see `_rest`)
    rest_first: int  # where its first section (or header table) is now
    holes: tuple[tuple[int, int], ...] = ()  # file ranges that must be zeros (checked last: MBs)


@dataclass(frozen=True, slots=True)
class Ungrown:
    pieces: tuple[Piece, ...]
    writes: tuple[Write, ...]
    size: int


def original_layout(elf: ElfFile, *, verify: bool = True) -> Original | None:
    """The layout before storekit grew `elf`, or None when `elf` does not look grown by storekit.

    `verify=False` skips the one check that reads megabytes (the zeros growth leaves: the old .bss,
    padding); `holes_are_zeros` does it later, once the cheap checks of an un-grow have passed."""
    try:
        orig = _original(elf)
    except (ElfError, ValueError, IndexError):
        return None
    if orig is not None and verify and not holes_are_zeros(elf, orig):
        return None
    return orig


def holes_are_zeros(elf: ElfFile, orig: Original) -> bool:
    """Whether the ranges growth filled with zeros hold only zeros (compared a megabyte at a time)."""
    step = 1 << 20
    for start, end in orig.holes:
        for pos in range(start, end, step):
            n = min(step, end - pos)
            if elf.data[pos : pos + n] != bytes(n):
                return False
    return True


def _original(elf: ElfFile) -> Original | None:
    if not elf.sections:
        return None
    seg_index, seg = last_load(elf)
    if seg.filesz != seg.memsz:  # growth leaves no .bss outside the file: most files stop here
        return None
    items = layout_items(elf)
    movable = {i.section for i in items.values()}
    end_fixed = fixed_end(elf, seg, movable)
    tail = {k: i for k, i in items.items() if seg.holds_vaddr(i.vaddr) and i.vaddr >= end_fixed}
    if not tail or any(i.section is None for i in tail.values()):
        return None
    if min(i.vaddr for i in tail.values()) != align_up(end_fixed, elf.codec.word):
        return None  # not where growth puts the first moved item
    sections = {k: i.section for k, i in tail.items() if i.section is not None}
    places: dict[str, Place] = {}
    for k, index in sections.items():
        place = _old_place(elf, k, index, set(sections.values()))
        if place is None:
            return None
        places[k] = place
    filesz = _old_filesz(elf, seg, end_fixed, places, set(sections.values()))
    rest = _rest(elf, seg, filesz, align_up(end_fixed, elf.codec.word))
    if rest is None:
        return None
    memsz = max([end_fixed, *(p.vaddr + p.size for p in places.values() if seg.holds_vaddr(p.vaddr))])
    return Original(seg_index, filesz, memsz - seg.vaddr, places, sections, *rest)


def _old_place(elf: ElfFile, kind: str, index: int, moved: set[int]) -> Place | None:
    """The gap a moved section left between its neighbours in the section header table."""
    s = elf.sections[index]
    if index + 1 >= len(elf.sections) or index - 1 in moved or index + 1 in moved:
        return None
    prev, nxt = elf.sections[index - 1], elf.sections[index + 1]
    if not nxt.flags & SHF_ALLOC:
        return None
    if index - 1 == 0:
        start = _vaddr_of(elf, elf.header.phoff + elf.header.phnum * elf.header.phentsize)
    elif prev.flags & SHF_ALLOC:
        start = prev.addr + (prev.size if prev.in_file else 0)
    else:
        return None
    start = align_up(start, s.addralign)
    end = nxt.addr
    if end <= start or any(
        t.flags & SHF_ALLOC and not t.flags & SHF_TLS and t.size and t.addr < end and start < t.addr + t.size
        for i, t in enumerate(elf.sections)
        if i not in moved
    ):
        return None
    offset = elf.vaddr_to_offset(start, end - start)
    gap = bytes(elf.data[offset : offset + end - start])
    content = None
    if kind == "table" and gap == bytes(len(gap)):  # growth cleared it: its copy starts with it
        copy = bytes(elf.data[elf.strtab_offset : elf.strtab_offset + min(elf.strtab_size, len(gap))])
        gap = content = copy + bytes(len(gap) - len(copy))
    size = _old_size(elf, kind, gap, nxt.addralign)
    return None if size is None else Place(start, offset, size, end - start, content)


def _old_size(elf: ElfFile, kind: str, gap: bytes, align: int) -> int | None:
    if kind == "dynamic":
        entsize = elf.codec.st("dyn").size
        return len(gap) if len(gap) % entsize == 0 else None
    if kind == "interp":
        end = gap.find(b"\0")
        return None if end <= 0 else end + 1
    # The gap may end with padding for the next section's alignment, and the table itself with NULs
    # (an rpath that chrpath cleared): the smallest size that needs no more padding than that.
    used = len(gap.rstrip(b"\0"))  # a table ends with the NUL of its last string
    size = max(used + 1, len(gap) - max(align, 1) + 1)
    return size if size <= len(gap) else None


def _vaddr_of(elf: ElfFile, offset: int) -> int:
    for p in elf.loads:
        if p.offset <= offset < p.offset + p.filesz:
            return p.vaddr + offset - p.offset
    raise ValueError("offset outside every segment")


def _old_filesz(elf: ElfFile, seg: Phdr, end_fixed: int, places: dict[str, Place], moved: set[int]) -> int:
    """The end of the last section with file bytes in the segment, the moved ones at their old places."""
    ends = [seg.vaddr]
    for i, s in enumerate(elf.sections):
        if i not in moved and s.flags & SHF_ALLOC and s.in_file and s.size and seg.holds_vaddr(s.addr):
            ends.append(s.addr + s.size)
    ends += [p.vaddr + p.size for p in places.values() if seg.holds_vaddr(p.vaddr)]
    end = max(ends)
    return end - seg.vaddr if end <= end_fixed else -1


def _rest(
    elf: ElfFile, seg: Phdr, filesz: int, tail: int
) -> tuple[int, int, int, tuple[tuple[int, int], ...]] | None:
    """Where the unmapped rest began before growth, where it begins now and where its first section
    is now (growth keeps its alignment).

    Growth moves the rest from its first section on, leaving zero padding in front of that behind
    (so that the result does not depend on earlier growths), so the original padding between the
    segment and the first section is put back as zeros: the rest's start "now" may lie inside the
    grown segment, and only its part from the first section on is copied back.
    """
    if filesz < 0:
        return None
    rest_old = seg.offset + filesz
    new_end = seg.offset + seg.filesz
    after = [s for s in elf.sections if s.in_file and s.size and s.offset >= new_end]
    align = max([8, *(s.addralign for s in after if s.addralign)])
    heads = [s.offset for s in elf.sections if s.in_file and s.offset >= new_end]
    heads += [o for o in (elf.header.shoff, elf.header.phoff) if o >= new_end]
    first = min([*heads, elf.size])
    rest_new = first - (first - rest_old) % align
    if rest_new < rest_old or any(s.flags & SHF_ALLOC for s in after):
        return None
    if any(
        i and not s.flags & SHF_ALLOC and s.size and rest_old <= s.offset < rest_new
        for i, s in enumerate(elf.sections)
    ):
        return None
    if rest_old <= elf.header.shoff < rest_new or rest_old <= elf.header.phoff < rest_new:
        return None
    return rest_old, rest_new, first, ((rest_old, seg.offset + tail - seg.vaddr), (new_end, first))


def table_room(elf: ElfFile) -> int:
    """The bytes the original string table had up to the next section: all of them stay at the
    start of a grown copy (see `plan_ungrow`), so clearing the original loses nothing."""
    orig = original_layout(elf, verify=False)
    if orig is not None and "table" in orig.places:
        return orig.places["table"].room
    addr = elf.tag(DT_STRTAB)
    for i, s in enumerate(elf.sections[:-1]):
        if s.addr == addr and s.type == SHT_STRTAB and s.flags & SHF_ALLOC:
            nxt = elf.sections[i + 1]
            if nxt.flags & SHF_ALLOC and addr + elf.strtab_size <= nxt.addr:
                try:  # the padding up to the next section, when it is in the same segment
                    elf.vaddr_to_offset(addr, nxt.addr - addr)
                except ElfError:
                    break
                return nxt.addr - addr
    return elf.strtab_size


def plan_ungrow(elf: ElfFile, state: Desired, expected: ElfFacts) -> Ungrown | None:
    """The original layout with `state` written into the original tables, or None when not possible."""
    if state.removed_libs or state.renamed_libs or any(is_self_relative(elf, d.tag) for d in elf.dynamic):
        return None
    orig = original_layout(elf, verify=False)
    if orig is None:
        return None
    try:
        return _plan(elf, state, expected, orig)
    except (ElfError, ValueError, IndexError):
        return None


def _plan(elf: ElfFile, state: Desired, expected: ElfFacts, orig: Original) -> Ungrown | None:
    table = _table_place(elf, orig)
    if table.content is not None:
        old_table = bytearray(table.content)
    else:
        old_table = bytearray(elf.data[table.offset : table.offset + max(table.size, table.room)])
    original = bytes(old_table[: table.size])
    # may put strings back into cleared places
    dynamic = strings_in_original(elf, state, old_table, table.vaddr, table.size)
    if dynamic is None or not refs_agree(elf, original) or not holes_are_zeros(elf, orig):
        return None
    # A string put back at the very end of the table (its cleared place) may end in what looked
    # like padding: the table is then that much longer.
    size = max(
        [table.size, *(d.val + 1 + len(string_at(old_table, d.val)) for d in dynamic if names_string(d))]
    )
    if size != table.size:
        table = Place(table.vaddr, table.offset, size, table.room, table.content)
        orig = replace(orig, places={**orig.places, "table": table})
        dynamic = [Dyn(d.tag, size) if d.tag == DT_STRSZ else d for d in dynamic]
    old_table = old_table[:size]
    delta = orig.rest_new - orig.rest_old

    def at(offset: int) -> int:
        return offset - delta if offset >= orig.rest_new else offset

    writes: list[Write] = []
    if old_table != elf.data[table.offset : table.offset + table.size]:
        writes.append((table.offset, bytes(old_table)))
    dyn_place = _place_of(elf, orig, "dynamic")
    if dyn_place is None:
        return None
    entsize = elf.codec.st("dyn").size
    if len(dynamic) + 1 > dyn_place.size // entsize:
        return None
    old = bytes(elf.data[dyn_place.offset : dyn_place.offset + dyn_place.size])
    writes.append((dyn_place.offset, pack_dynamic_over(elf.codec, dynamic, old)))
    interp = _place_of(elf, orig, "interp")
    if interp is not None and state.interp is not None:
        if len(state.interp) + 1 > interp.size:
            return None
        writes.append((interp.offset, state.interp + bytes(interp.size - len(state.interp))))
    header = elf.header._replace(phoff=at(elf.header.phoff), shoff=at(elf.header.shoff))
    phdrs = [_phdr(p, i, orig, at) for i, p in enumerate(elf.segments)]
    shdrs = _sections(elf, orig, at)
    writes += [
        (0, header.pack(elf.codec)),
        (header.phoff, b"".join(p.pack(elf.codec) for p in phdrs)),
        (header.shoff, b"".join(s.pack(elf.codec) for s in shdrs)),
    ]
    size = orig.rest_old + elf.size - orig.rest_new
    first = orig.rest_first
    pieces: tuple[Piece, ...] = tuple(
        p
        for p in (Copy(0, orig.rest_old), Zeros(first - orig.rest_new), Copy(first, elf.size - first))
        if p.length
    )
    result = Ungrown(pieces, tuple(writes), size)
    return result if _reads_back(elf, result, expected) else None


def _table_place(elf: ElfFile, orig: Original) -> Place:
    """The original string table: its old place if it moved, else where it is."""
    if "table" in orig.places:
        return orig.places["table"]
    return Place(elf.tag(DT_STRTAB) or 0, elf.strtab_offset, elf.strtab_size)


def _place_of(elf: ElfFile, orig: Original, kind: str) -> Place | None:
    if kind in orig.places:
        return orig.places[kind]
    p = elf.dynamic_segment if kind == "dynamic" else elf.segment(PT_INTERP)
    return None if p is None else Place(p.vaddr, p.offset, p.filesz)


def _phdr(p: Phdr, i: int, orig: Original, at: Callable[[int], int]) -> Phdr:
    if i == orig.seg_index:
        return p._replace(filesz=orig.filesz, memsz=orig.memsz)
    kind = {PT_DYNAMIC: "dynamic", PT_INTERP: "interp"}.get(p.type)
    if kind is not None and kind in orig.places:
        place = orig.places[kind]
        return p.moved(place.offset, place.vaddr, place.size)
    if p.type not in (PT_LOAD, PT_GNU_RELRO) and p.filesz:
        return p._replace(offset=at(p.offset))
    return p


def _sections(elf: ElfFile, orig: Original, at: Callable[[int], int]) -> list[Shdr]:
    moved = {orig.sections[k]: place for k, place in orig.places.items()}
    out = []
    for i, s in enumerate(elf.sections):
        if i in moved:
            place = moved[i]
            s = s._replace(addr=place.vaddr, offset=place.offset, size=place.size)
        elif i and not s.flags & SHF_ALLOC:
            s = s._replace(offset=at(s.offset))
        out.append(s)
    return out


def _reads_back(elf: ElfFile, ungrown: Ungrown, expected: ElfFacts) -> bool:
    """Assemble the result in memory and check that it parses and says what the plan wants."""
    out = bytearray()
    for p in ungrown.pieces:
        if isinstance(p, Copy):
            out += elf.data[p.offset : p.offset + p.length]
        else:
            assert isinstance(p, Zeros)
            out += bytes(p.length)
    for offset, data in ungrown.writes:
        if offset + len(data) > len(out):
            return False
        out[offset : offset + len(data)] = data
    try:
        result = parse(bytes(out), elf.path)
    except ElfError:
        return False
    return result.facts() == expected and original_layout(result) is None
