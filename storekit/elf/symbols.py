"""Renaming dynamic symbols (`patchelf --rename-dynamic-symbols`): new names, and the hash tables
that find symbols by name rebuilt for them.

The new names go into the dynamic string table like any other string (see `strtab`); here the
symbols get their new `st_name`, and the tables keyed by names are rebuilt in place, at their size:
the GNU hash table needs the symbols it covers ordered by bucket, so those symbols are reordered,
with their `.gnu.version` entries and every dynamic relocation that names one by index; the SysV
`.hash` table gets new chains. MIPS is refused: its GOT mirrors the order of the dynamic symbols.
"""

from __future__ import annotations

import struct

from storekit.elf import versions
from storekit.elf.format import DT_GNU_HASH, DT_HASH, DT_SYMTAB
from storekit.elf.inspect import ElfFile
from storekit.errors import ElfPatchError

SHT_RELA, SHT_REL = 4, 9
Write = tuple[int, bytes]


def gnu_hash(name: bytes) -> int:
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def sysv_hash(name: bytes) -> int:
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


def renames_by_index(elf: ElfFile, mapping: dict[bytes, bytes]) -> dict[int, bytes]:
    """Symbol index -> new name, for the dynamic symbols `mapping` names."""
    if elf.header.machine in (8, 10):
        raise ElfPatchError(elf.path, "is a MIPS file: its GOT follows the order of the dynamic symbols")
    count = versions.dynsym_count(elf)
    if count is None or elf.tag(DT_SYMTAB) is None:
        raise ElfPatchError(elf.path, "has no dynamic symbol table to rename symbols in")
    out: dict[int, bytes] = {}
    for i, st_name in enumerate(versions.symbol_name_offsets(elf, count)):
        new = mapping.get(elf.string(st_name))
        if new is not None:
            out[i] = new
    return out


def rename_writes(elf: ElfFile, renames: dict[int, bytes], offsets: dict[bytes, int]) -> list[Write]:
    """The writes that give the symbols their new names (placed at `offsets` in the string table)."""
    count = versions.dynsym_count(elf) or 0
    entsize = 24 if elf.codec.is64 else 16
    symtab = elf.vaddr_to_offset(elf.tag(DT_SYMTAB) or 0, count * entsize)
    raw = [bytearray(elf.data[symtab + i * entsize : symtab + (i + 1) * entsize]) for i in range(count)]
    names = []
    for i, st_name in enumerate(versions.symbol_name_offsets(elf, count)):
        names.append(renames.get(i, elf.string(st_name)))
        if i in renames:
            raw[i][0:4] = elf.codec.st("I").pack(offsets[renames[i]])
    order = list(range(count))
    writes: list[Write] = []
    gnu = elf.tag(DT_GNU_HASH)
    if gnu is not None:
        order, gnu_writes = _gnu_hash(elf, gnu, names)
        writes += gnu_writes
    new_index = {old: new for new, old in enumerate(order)}
    writes.append((symtab, b"".join(bytes(raw[old]) for old in order)))
    versym = versions.versym_offset(elf, count)
    if versym is not None:
        entries = [bytes(elf.data[versym + 2 * i : versym + 2 * i + 2]) for i in range(count)]
        writes.append((versym, b"".join(entries[old] for old in order)))
    if order != list(range(count)):
        writes += _relocations(elf, new_index)
    hashed = elf.tag(DT_HASH)
    if hashed is not None:
        writes += _sysv_hash(elf, hashed, [names[old] for old in order])
    return writes


def _gnu_hash(elf: ElfFile, addr: int, names: list[bytes]) -> tuple[list[int], list[Write]]:
    """The new symbol order (sorted by bucket) and the rebuilt table."""
    u32 = elf.codec.st("I")
    base = elf.vaddr_to_offset(addr, 16)
    nbuckets, symoffset, bloom_size, shift = (u32.unpack_from(elf.data, base + 4 * i)[0] for i in range(4))
    word = elf.codec.st("dyn").size // 2
    size = 16 + bloom_size * word + 4 * nbuckets + 4 * (len(names) - symoffset)
    if nbuckets == 0 or bloom_size == 0 or symoffset > len(names) or base + size > elf.size:
        raise ElfPatchError(elf.path, "has a GNU hash table header out of range: cannot rebuild it")
    elf.vaddr_to_offset(addr, size)  # all of it mapped
    hashes = {i: gnu_hash(names[i]) for i in range(symoffset, len(names))}
    hashed = sorted(hashes, key=lambda i: hashes[i] % nbuckets)  # stable: the order within a bucket
    order = list(range(symoffset)) + hashed
    bits = 64 if elf.codec.is64 else 32
    bloom = [0] * bloom_size
    buckets = [0] * nbuckets
    chains = []
    for pos, i in enumerate(hashed):
        h = hashes[i]
        bloom[(h // bits) % bloom_size] |= (1 << (h % bits)) | (1 << ((h >> shift) % bits))
        bucket = h % nbuckets
        if buckets[bucket] == 0:
            buckets[bucket] = symoffset + pos
        last = pos == len(hashed) - 1 or hashes[hashed[pos + 1]] % nbuckets != bucket
        chains.append((h & ~1) | int(last))
    fmt = ("<" if elf.codec.little else ">") + ("Q" if word == 8 else "I")
    table = b"".join(struct.pack(fmt, w) for w in bloom)
    table += b"".join(u32.pack(b) for b in buckets) + b"".join(u32.pack(c) for c in chains)
    return order, [(base + 16, table)]


def _sysv_hash(elf: ElfFile, addr: int, names: list[bytes]) -> list[Write]:
    u32 = elf.codec.st("I")
    base = elf.vaddr_to_offset(addr, 8)
    nbucket, nchain = u32.unpack_from(elf.data, base)[0], u32.unpack_from(elf.data, base + 4)[0]
    if nbucket == 0 or nchain > len(names) or base + 8 + 4 * (nbucket + nchain) > elf.size:
        raise ElfPatchError(elf.path, "has a SysV hash table header out of range: cannot rebuild it")
    first = len(names) - nchain
    buckets, chains = [0] * nbucket, [0] * nchain
    for i in range(nchain):
        h = sysv_hash(names[first + i]) % nbucket
        chains[i], buckets[h] = buckets[h], i
    return [(base + 8, b"".join(u32.pack(v) for v in buckets + chains))]


def _relocations(elf: ElfFile, new_index: dict[int, int]) -> list[Write]:
    """Dynamic relocations (those linked to the dynamic symbol table) with the symbols' new indexes."""
    symtab = elf.tag(DT_SYMTAB)
    dynsym = {i for i, s in enumerate(elf.sections) if s.addr == symtab and s.type == 11}
    if not elf.sections:
        raise ElfPatchError(elf.path, "has no section headers: its relocations cannot be found")
    is64 = elf.codec.is64
    word = "Q" if is64 else "I"
    writes: list[Write] = []
    for s in elf.sections:
        if s.type not in (SHT_REL, SHT_RELA) or s.link not in dynsym or not s.size:
            continue
        fmt = ("<" if elf.codec.little else ">") + word * (3 if s.type == SHT_RELA else 2)
        rec = struct.Struct(fmt)
        out = bytearray(elf.data[s.offset : s.offset + s.size])
        for pos in range(0, len(out) - rec.size + 1, rec.size):
            fields = list(rec.unpack_from(out, pos))
            sym, kind = (
                (fields[1] >> 32, fields[1] & 0xFFFFFFFF) if is64 else (fields[1] >> 8, fields[1] & 0xFF)
            )
            if sym in new_index and new_index[sym] != sym:
                sym = new_index[sym]
                fields[1] = (sym << 32 | kind) if is64 else (sym << 8 | kind)
                rec.pack_into(out, pos, *fields)
        if out != elf.data[s.offset : s.offset + s.size]:
            writes.append((s.offset, bytes(out)))
    return writes
