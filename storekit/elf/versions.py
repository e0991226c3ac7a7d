"""Symbol versioning records (.gnu.version_r, .gnu.version_d, .gnu.version) as far as editing needs them.

Their string fields point into the dynamic string table, so they count as references when a string is
overwritten in place. `--remove-needed` must also drop the library's VERNEED entry, or ld.so asserts on
a version requirement of a library that is not loaded (patchelf #455); `--replace-needed` renames it.
"""

from __future__ import annotations

import array
import struct
import sys
from dataclasses import dataclass

from storekit.elf.format import (
    DT_GNU_HASH,
    DT_SYMTAB,
    DT_VERDEF,
    DT_VERDEFNUM,
    DT_VERNEED,
    DT_VERNEEDNUM,
    DT_VERSYM,
    SHT_DYNSYM,
)
from storekit.elf.inspect import ElfFile

VER_NDX_GLOBAL = 1
_MAX_RECORDS = 1 << 16  # a bound on linked-list walks, so a cyclic vn_next cannot hang us


@dataclass(frozen=True, slots=True)
class Vernaux:
    hash: int
    flags: int
    other: int  # the version index symbols use in .gnu.version
    name: int  # string offset


@dataclass(frozen=True, slots=True)
class Verneed:
    version: int
    file: int  # string offset of the library's name
    auxes: tuple[Vernaux, ...]


@dataclass(frozen=True, slots=True)
class VerneedTable:
    offset: int  # file offset of the first record
    extent: int  # bytes the records span now: a rewrite may use at most this many
    entries: tuple[Verneed, ...]


def _structs(little: bool) -> tuple[struct.Struct, struct.Struct, struct.Struct, struct.Struct]:
    e = "<" if little else ">"
    return (
        struct.Struct(e + "HHIII"),
        struct.Struct(e + "IHHII"),
        struct.Struct(e + "HHHHIII"),
        struct.Struct(e + "II"),
    )


def read_verneed(elf: ElfFile) -> VerneedTable | None:
    addr, count = elf.tag(DT_VERNEED), elf.tag(DT_VERNEEDNUM)
    if addr is None or not count:
        return None
    vn, vna, _, _ = _structs(elf.codec.little)
    start = pos = elf.vaddr_to_offset(addr, vn.size)
    end = start
    entries: list[Verneed] = []
    for _ in range(min(count, _MAX_RECORDS)):
        _check(elf, pos, vn.size)
        version, cnt, file, aux, nxt = vn.unpack_from(elf.data, pos)
        auxes: list[Vernaux] = []
        apos = pos + aux
        for _ in range(min(cnt, _MAX_RECORDS)):
            _check(elf, apos, vna.size)
            h, flags, other, name, anext = vna.unpack_from(elf.data, apos)
            auxes.append(Vernaux(h, flags, other, name))
            end = max(end, apos + vna.size)
            if not anext:
                break
            apos += anext
        entries.append(Verneed(version, file, tuple(auxes)))
        end = max(end, pos + vn.size)
        if not nxt:
            break
        pos += nxt
    return VerneedTable(start, end - start, tuple(entries))


def pack_verneed(little: bool, entries: tuple[Verneed, ...] | list[Verneed]) -> bytes:
    """Records laid out one after another, each Verneed followed by its Vernaux entries."""
    vn, vna, _, _ = _structs(little)
    out = bytearray()
    for i, entry in enumerate(entries):
        last = i == len(entries) - 1
        size = vn.size + vna.size * len(entry.auxes)
        out += vn.pack(entry.version, len(entry.auxes), entry.file, vn.size, 0 if last else size)
        for j, a in enumerate(entry.auxes):
            out += vna.pack(a.hash, a.flags, a.other, a.name, 0 if j == len(entry.auxes) - 1 else vna.size)
    return bytes(out)


def verdef_names(elf: ElfFile) -> list[int]:
    """String offsets of every version definition name (the first is usually the soname)."""
    addr, count = elf.tag(DT_VERDEF), elf.tag(DT_VERDEFNUM)
    if addr is None or not count:
        return []
    _, _, vd, vda = _structs(elf.codec.little)
    pos = elf.vaddr_to_offset(addr, vd.size)
    names: list[int] = []
    for _ in range(min(count, _MAX_RECORDS)):
        _check(elf, pos, vd.size)
        _, _, _, cnt, _, aux, nxt = vd.unpack_from(elf.data, pos)
        apos = pos + aux
        for _ in range(min(cnt, _MAX_RECORDS)):
            _check(elf, apos, vda.size)
            name, anext = vda.unpack_from(elf.data, apos)
            names.append(name)
            if not anext:
                break
            apos += anext
        if not nxt:
            break
        pos += nxt
    return names


def dynsym_count(elf: ElfFile) -> int | None:
    """How many dynamic symbols there are: from the section header, else from the GNU hash table."""
    addr = elf.tag(DT_SYMTAB)
    if addr is None:
        return 0
    for s in elf.sections:
        if s.type == SHT_DYNSYM and s.addr == addr and s.entsize:
            return s.size // s.entsize
    return _gnu_hash_count(elf)


def _gnu_hash_count(elf: ElfFile) -> int | None:
    addr = elf.tag(DT_GNU_HASH)
    if addr is None:
        return None
    u32 = elf.codec.u32
    base = elf.vaddr_to_offset(addr, 16)
    nbuckets, symoffset, bloom_size = u32(elf.data, base), u32(elf.data, base + 4), u32(elf.data, base + 8)
    buckets = base + 16 + bloom_size * elf.codec.word
    _check(elf, buckets, 4 * nbuckets)
    top = max((u32(elf.data, buckets + 4 * i) for i in range(nbuckets)), default=0)
    if top < symoffset:
        return symoffset
    chain = buckets + 4 * nbuckets
    for index in range(top, top + _MAX_RECORDS):
        _check(elf, chain + 4 * (index - symoffset), 4)
        if u32(elf.data, chain + 4 * (index - symoffset)) & 1:
            return index + 1
    return None


def symbol_name_offsets(elf: ElfFile, count: int) -> array.array[int]:
    """st_name of every dynamic symbol, read as one array (st_name is the first word in both classes)."""
    addr = elf.tag(DT_SYMTAB)
    if addr is None or count == 0:
        return array.array("I")
    entsize = 24 if elf.codec.is64 else 16
    offset = elf.vaddr_to_offset(addr, count * entsize)
    words = array.array("I")
    words.frombytes(bytes(elf.data[offset : offset + count * entsize]))
    if elf.codec.little != (sys.byteorder == "little"):
        words.byteswap()
    return words[:: entsize // 4]


def versym_offset(elf: ElfFile, count: int) -> int | None:
    addr = elf.tag(DT_VERSYM)
    return None if addr is None or count == 0 else elf.vaddr_to_offset(addr, 2 * count)


def _check(elf: ElfFile, offset: int, size: int) -> None:
    if offset < 0 or offset + size > elf.size:
        raise elf.error("inconsistent ELF headers: a symbol version record lies outside the file")
