"""Growth: room for a dynamic section, string table or interpreter that no longer fits where it is.

The new content goes at the end of the last (writable) PT_LOAD, which is extended to cover it: its
.bss becomes zero bytes in the file (written as a hole) and the non-loaded sections after it (symbol
tables, debug info) and the section header table move down. Nothing that is mapped moves, so no
pointer into the image goes stale (DT_VERDEF, DT_RELR, DT_VERSYM, symbols, code), the program header
table keeps its place (PT_PHDR, AT_PHDR on every kernel) and no PT_LOAD is added: the new bytes share
the segment's alignment, so `p_offset % p_align == p_vaddr % p_align` holds for any max-page-size.
The moved items keep their section headers (.dynamic, .dynstr, .interp repointed), so `strip` and
`readelf` see a consistent file. Repeated edits find their own earlier additions at the end of the
segment (nothing else lies past them) and rebuild them in place instead of appending again.
"""

from __future__ import annotations

from dataclasses import dataclass

from storekit.elf.format import (
    DT_NULL,
    DT_STRSZ,
    DT_STRTAB,
    PF_W,
    PT_DYNAMIC,
    PT_GNU_RELRO,
    PT_INTERP,
    PT_LOAD,
    PT_TLS,
    SHF_ALLOC,
    SHF_TLS,
    SHT_DYNAMIC,
    SHT_NOBITS,
    SHT_PROGBITS,
    SHT_STRTAB,
    Codec,
    Dyn,
    Phdr,
    Shdr,
    align_up,
    pack_dynamic,
)
from storekit.elf.inspect import ElfFile
from storekit.errors import ElfPatchError

Write = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class Copy:
    """Bytes `offset`..`offset+length` of the original file."""

    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Fill:
    data: bytes


@dataclass(frozen=True, slots=True)
class Zeros:
    """Zero bytes, written as a hole where the file system allows it."""

    length: int


Piece = Copy | Fill | Zeros


@dataclass(frozen=True, slots=True)
class Movable:
    """The final content of the three things growth may move, and which of them no longer fit."""

    dynamic: tuple[Dyn, ...]
    dynamic_grew: bool
    table_writes: tuple[Write, ...]  # in-place overwrites, relative to the table
    grown_table: bytes | None  # the whole new table when it grew
    interp: bytes | None
    interp_grew: bool


@dataclass(frozen=True, slots=True)
class Grown:
    pieces: tuple[Piece, ...]
    writes: tuple[Write, ...]
    size: int


@dataclass(frozen=True, slots=True)
class LayoutItem:
    vaddr: int
    size: int
    section: int | None


def diff_writes(old: bytes, new: bytes, at: int, unit: int) -> list[Write]:
    """Writes turning `old` into `new` at file offset `at`, one per differing `unit`-sized chunk."""
    return [
        (at + i, new[i : i + unit])
        for i in range(0, len(new), unit)
        if old[i : i + unit] != new[i : i + unit]
    ]


def grow(elf: ElfFile, m: Movable, writes: list[Write], section_updates: dict[int, Shdr]) -> Grown:
    """The pieces and writes of the grown file (see the module docstring for the layout)."""
    if not elf.sections:
        raise ElfPatchError(
            elf.path,
            "has no section headers, which storekit needs to grow it (the new value does not fit in place)",
        )
    seg_index, seg = last_load(elf)
    items = layout_items(elf)
    tail = _plan_tail(elf, seg, m, items)
    keep = min(seg.filesz, tail.base - seg.vaddr)  # bytes of the segment's file image that stay
    _check_bss(elf, tail.start - seg.vaddr - keep)
    shift = _shift(elf, seg, keep, seg.offset + tail.end - seg.vaddr)
    pieces: list[Piece] = [
        Copy(0, seg.offset + keep),
        Zeros(tail.start - seg.vaddr - keep),  # the old .bss, and alignment
        Fill(tail.data),
        Zeros(shift.rest_new - (seg.offset + tail.end - seg.vaddr)),
        Copy(shift.rest_old, elf.size - shift.rest_old),
    ]
    new_seg = seg._replace(filesz=tail.end - seg.vaddr, memsz=tail.end - seg.vaddr)
    bias = seg.offset - seg.vaddr
    phdrs = [_phdr(p, i, seg_index, new_seg, tail.place, bias, shift) for i, p in enumerate(elf.segments)]
    shdrs = _sections(elf, section_updates, items, tail.place, bias, shift)
    header = elf.header._replace(phoff=shift.at(elf, elf.header.phoff), shoff=shift.at(elf, elf.header.shoff))
    out: list[Write] = [
        (0, header.pack(elf.codec)),
        (header.phoff, b"".join(p.pack(elf.codec) for p in phdrs)),
        (header.shoff, b"".join(s.pack(elf.codec) for s in shdrs)),
    ]
    out += [(shift.at(elf, o), d) for o, d in item_writes(elf, m, tail.dynamic, set(tail.place))]
    out += [(shift.at(elf, o), d) for o, d in writes]
    if "table" in tail.place and elf.strtab_offset + elf.strtab_size <= shift.keep_end:
        # The old table stays in the file, unused: cleared, so no old string (a store path) remains.
        # The copy starts with all of it (`strtab.place`'s floor): un-growing takes it from there.
        out.append((elf.strtab_offset, bytes(elf.strtab_size)))
    size = shift.rest_new + elf.size - shift.rest_old
    return Grown(tuple(p for p in pieces if not _empty(p)), tuple(out), size)


@dataclass(frozen=True, slots=True)
class _Tail:
    """The rebuilt end of the last segment: addresses, the items placed there and their bytes."""

    base: int  # end of what stays in the segment
    start: int  # `base`, aligned: where the tail begins
    end: int
    place: dict[str, tuple[int, int]]  # item -> (vaddr, size)
    data: bytes
    dynamic: list[Dyn]  # the final entries, DT_STRTAB/DT_STRSZ fixed


@dataclass(frozen=True, slots=True)
class _Shift:
    """How file offsets move: below `keep_end` they stay, from `rest_old` on they move by `delta`."""

    keep_end: int
    rest_old: int
    rest_new: int

    def at(self, elf: ElfFile, offset: int) -> int:
        if offset < self.keep_end:
            return offset
        if offset >= self.rest_old:
            return offset + self.rest_new - self.rest_old
        raise ElfPatchError(
            elf.path, f"has data at offset {offset} where the grown segment goes: refusing to grow it"
        )


def _plan_tail(elf: ElfFile, seg: Phdr, m: Movable, items: dict[str, LayoutItem]) -> _Tail:
    """What moves (what no longer fits, and earlier additions found at the end) and where it goes."""
    end_fixed = fixed_end(elf, seg, {i.section for i in items.values()})
    in_tail = {k for k, i in items.items() if seg.holds_vaddr(i.vaddr) and i.vaddr >= end_fixed}
    if in_tail and seg.filesz != seg.memsz:
        raise ElfPatchError(
            elf.path, "has an unexpected layout (data after .bss in the last segment): refusing to grow it"
        )
    grew = {"dynamic": m.dynamic_grew, "table": m.grown_table is not None, "interp": m.interp_grew}
    moving = [k for k in ("dynamic", "table", "interp") if grew[k] or k in in_tail]
    for k in moving:
        if k not in items or items[k].section is None:
            raise ElfPatchError(elf.path, f"has no section header for its {_NAMES[k]}: refusing to move it")
    if "dynamic" in moving and not seg.flags & PF_W:
        raise ElfPatchError(elf.path, "has a read-only last segment: the dynamic section cannot move there")
    table = m.grown_table if m.grown_table is not None else _patched_table(elf, m)
    base = end_fixed if in_tail else max(end_fixed, seg.vaddr + seg.memsz)
    start = cur = align_up(base, elf.codec.word)  # the dynamic section first: word aligned
    sizes = {
        "dynamic": (len(m.dynamic) + 1) * elf.codec.st("dyn").size,
        "table": len(table),
        "interp": len(m.interp or b"") + 1,
    }
    place: dict[str, tuple[int, int]] = {}
    for k in moving:
        place[k] = (cur, sizes[k])
        cur += sizes[k]
    dynamic = [_strtab_fix(d, place["table"]) for d in m.dynamic] if "table" in place else list(m.dynamic)
    contents = {
        "dynamic": pack_dynamic(
            elf.codec, self_relative(elf, dynamic, place.get("dynamic", (0, 0))[0]), len(dynamic) + 1
        ),
        "table": table,
        "interp": (m.interp or b"") + b"\0",
    }
    data = bytearray(cur - start)
    for k, (vaddr, size) in place.items():
        data[vaddr - start : vaddr - start + size] = contents[k]
    return _Tail(base, start, cur, place, bytes(data), dynamic)


def _patched_table(elf: ElfFile, m: Movable) -> bytes:
    table = bytearray(elf.data[elf.strtab_offset : elf.strtab_offset + elf.strtab_size])
    for rel, data in m.table_writes:
        table[rel : rel + len(data)] = data
    return bytes(table)


def _shift(elf: ElfFile, seg: Phdr, keep: int, new_end: int) -> _Shift:
    """Where the unmapped rest of the file (after the last segment) goes, keeping its alignment."""
    rest_old = seg.offset + seg.filesz
    _check_rest(elf, seg, rest_old, keep)
    moved = [s.addralign for s in elf.sections if s.in_file and s.offset >= rest_old and s.addralign]
    for a in moved:
        # sh_addralign is input: 2^30 would pad the file by a GiB, 2^62 past what a file can hold
        if a & (a - 1) or a > elf.size:
            raise ElfPatchError(
                elf.path,
                f"inconsistent ELF headers: a section after the last segment has alignment {a}, which is "
                f"{'not a power of two' if a & (a - 1) else f'larger than the file ({elf.size} bytes)'}",
            )
    align = max([8, *moved])
    # Zero padding before the first thing of the rest (what an earlier growth added to keep the
    # alignment) is not carried along: the result is the same whatever the order of the edits.
    heads = [s.offset for s in elf.sections if s.in_file and s.offset >= rest_old]
    heads += [o for o in (elf.header.shoff, elf.header.phoff) if o >= rest_old]
    first = min([*heads, elf.size])
    if first > rest_old and elf.data[rest_old:first] == bytes(first - rest_old):
        rest_old = first
    return _Shift(seg.offset + keep, rest_old, new_end + (rest_old - new_end) % align)


#: The largest .bss growth turns into file bytes (written as a hole); p_memsz is input, so without a
#: bound a header claiming 2^62 bytes of .bss would make a file of that size.
MAX_BSS = 1 << 30


def _check_bss(elf: ElfFile, bss: int) -> None:
    if bss > MAX_BSS:
        raise ElfPatchError(
            elf.path,
            f"its last segment has {bss} bytes of .bss, which growing it would write into the file; "
            f"storekit refuses more than {MAX_BSS} (is p_memsz right?)",
        )


_NAMES = {"dynamic": "dynamic section", "table": "dynamic string table", "interp": "interpreter"}


def _empty(p: Piece) -> bool:
    return (p.length if isinstance(p, (Copy, Zeros)) else len(p.data)) == 0


def last_load(elf: ElfFile) -> tuple[int, Phdr]:
    loads = [(i, p) for i, p in enumerate(elf.segments) if p.type == PT_LOAD]
    if not loads:
        raise ElfPatchError(elf.path, "has no loadable segment: refusing to grow it")
    index, seg = max(loads, key=lambda ip: ip[1].vaddr)
    if any(p.offset + p.filesz > seg.offset + seg.filesz for _, p in loads):
        raise ElfPatchError(
            elf.path, "has its last segment in memory before another in the file: refusing to grow it"
        )
    return index, seg


def layout_items(elf: ElfFile) -> dict[str, LayoutItem]:
    """Where the dynamic section, its string table and the interpreter are now, with their sections."""
    found: dict[str, LayoutItem] = {}
    kinds = {"dynamic": (SHT_DYNAMIC,), "table": (SHT_STRTAB,), "interp": (SHT_PROGBITS,)}
    spots: dict[str, tuple[int, int]] = {}
    if elf.dynamic_segment is not None:
        spots["dynamic"] = (elf.dynamic_segment.vaddr, elf.dynamic_segment.filesz)
    strtab = elf.tag(DT_STRTAB)
    if strtab is not None:
        spots["table"] = (strtab, elf.strtab_size)
    interp = elf.segment(PT_INTERP)
    if interp is not None:
        spots["interp"] = (interp.vaddr, interp.filesz)
    for k, (vaddr, size) in spots.items():
        index = next(
            (
                i
                for i, s in enumerate(elf.sections)
                if s.addr == vaddr and s.type in kinds[k] and s.flags & SHF_ALLOC
            ),
            None,
        )
        found[k] = LayoutItem(vaddr, size, index)
    return found


def fixed_end(elf: ElfFile, seg: Phdr, movable_sections: set[int | None]) -> int:
    """The end address of everything in the last segment that growth must leave where it is."""
    ends = [seg.vaddr]
    for i, s in enumerate(elf.sections):
        if (
            i in movable_sections
            or not s.flags & SHF_ALLOC
            or not s.size
            or (s.type == SHT_NOBITS and s.flags & SHF_TLS)
        ):
            continue
        if seg.holds_vaddr(s.addr):
            ends.append(s.addr + s.size)
    for p in elf.segments:
        if p.type in (PT_LOAD, PT_DYNAMIC, PT_INTERP) or not p.memsz or not seg.holds_vaddr(p.vaddr):
            continue
        ends.append(p.vaddr + (p.filesz if p.type == PT_TLS else p.memsz))
    return max(ends)


def _check_rest(elf: ElfFile, seg: Phdr, rest_old: int, keep: int) -> None:
    """Everything in the file after the last segment must be unmapped (it moves down as one block)."""
    for s in elf.sections:
        if not s.in_file or not s.size:
            continue
        if s.flags & SHF_ALLOC and s.offset >= rest_old:
            raise ElfPatchError(elf.path, "has loaded sections after its last segment: refusing to grow it")
        if s.offset < rest_old < s.offset + s.size and not s.flags & SHF_ALLOC:
            raise ElfPatchError(
                elf.path, "has a section overlapping the end of its last segment: refusing to grow it"
            )
    if seg.offset + keep <= elf.header.shoff < rest_old:
        raise ElfPatchError(elf.path, "has its section headers inside its last segment: refusing to grow it")


def _strtab_fix(d: Dyn, spot: tuple[int, int]) -> Dyn:
    if d.tag == DT_STRTAB:
        return Dyn(d.tag, spot[0])
    if d.tag == DT_STRSZ:
        return Dyn(d.tag, spot[1])
    return d


def _phdr(
    p: Phdr,
    i: int,
    seg_index: int,
    new_seg: Phdr,
    place: dict[str, tuple[int, int]],
    bias: int,
    shift: _Shift,
) -> Phdr:
    if i == seg_index:
        return new_seg
    moved = {PT_DYNAMIC: "dynamic", PT_INTERP: "interp"}.get(p.type)
    if moved in place:
        vaddr, size = place[moved]
        return p.moved(vaddr + bias, vaddr, size)
    if p.type not in (PT_LOAD, PT_GNU_RELRO) and p.filesz and p.offset >= shift.rest_old:
        return p._replace(offset=p.offset + shift.rest_new - shift.rest_old)
    return p


def _sections(
    elf: ElfFile,
    updates: dict[int, Shdr],
    items: dict[str, LayoutItem],
    place: dict[str, tuple[int, int]],
    bias: int,
    shift: _Shift,
) -> list[Shdr]:
    """Moved items repointed; unmapped sections after the last segment moved down with the rest.

    A .bss stays SHT_NOBITS even though zero bytes now back it in the file (as .plt on PowerPC64),
    so `nm` still shows its symbols as B.
    """
    moved = {items[k].section: spot for k, spot in place.items()}
    out = []
    for i, s in enumerate(elf.sections):
        s = updates.get(i, s)
        if i in moved:
            vaddr, size = moved[i]
            s = s._replace(addr=vaddr, offset=vaddr + bias, size=size)
        elif i and not s.flags & SHF_ALLOC and s.offset >= shift.rest_old:
            s = s._replace(offset=s.offset + shift.rest_new - shift.rest_old)
        out.append(s)
    return out


def item_writes(elf: ElfFile, m: Movable, dynamic: list[Dyn], moving: set[str]) -> list[Write]:
    """Writes for the items that stay where they are but change (all of them when nothing grows)."""
    out: list[Write] = []
    seg = elf.dynamic_segment
    if "dynamic" not in moving and seg is not None and elf.has_dynamic_bytes:
        entsize = elf.codec.st("dyn").size
        old = bytes(elf.data[seg.offset : seg.offset + seg.filesz // entsize * entsize])
        new = pack_dynamic_over(elf.codec, self_relative(elf, dynamic, seg.vaddr), old)
        out += diff_writes(old, new, seg.offset, entsize)
    if "table" not in moving:
        out += [(elf.strtab_offset + rel, d) for rel, d in m.table_writes]
    interp = elf.segment(PT_INTERP)
    if "interp" not in moving and interp is not None and m.interp is not None:
        padded = m.interp + b"\0" * (interp.filesz - len(m.interp))
        if padded != bytes(elf.data[interp.offset : interp.offset + interp.filesz]):
            out.append((interp.offset, padded))
    return out


EM_MIPS, EM_MIPS_RS3_LE = 8, 10
DT_MIPS_RLD_MAP_REL = 0x70000035


def is_self_relative(elf: ElfFile, tag: int) -> bool:
    """Whether entries with `tag` hold an address relative to their own place in .dynamic."""
    return tag == DT_MIPS_RLD_MAP_REL and elf.header.machine in (EM_MIPS, EM_MIPS_RS3_LE)


def self_relative(elf: ElfFile, entries: list[Dyn] | tuple[Dyn, ...], base: int) -> list[Dyn]:
    """The entries as written at address `base`: the planned ones carry absolute addresses for the
    tags that are relative to the entry's own address (MIPS's DT_MIPS_RLD_MAP_REL), which become
    relative here, once the entry's final place is known."""
    entsize = elf.codec.st("dyn").size
    return [
        Dyn(d.tag, (d.val - base - i * entsize) % (1 << (8 * elf.codec.word)))
        if is_self_relative(elf, d.tag)
        else d
        for i, d in enumerate(entries)
    ]


def pack_dynamic_over(codec: Codec, entries: list[Dyn] | tuple[Dyn, ...], old: bytes) -> bytes:
    """`entries` and a terminator over the `old` dynamic section's bytes, whose DT_NULL entries past
    them are kept as they are: tools like chrpath leave values in them, and zeroing those for
    nothing would make growth impossible to undo byte for byte."""
    entsize = codec.st("dyn").size
    new = bytearray(pack_dynamic(codec, entries, len(old) // entsize))
    for i in range(len(entries) * entsize, len(new), entsize):  # a DT_NULL's value is never read
        if codec.st("dyn").unpack_from(old, i)[0] == DT_NULL:
            new[i : i + entsize] = old[i : i + entsize]
    return bytes(new)
