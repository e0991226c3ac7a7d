"""ELF's on-disk records for both classes and both byte orders, as immutable values that unpack and pack.

Every field is read and written through one `Codec` (class + byte order), so a big-endian or 32-bit
file is never touched by a little-endian 64-bit assumption: the bug class behind patchelf #663.
Only the few records an editor of the dynamic linking facts needs are modelled. They are NamedTuples
rather than frozen dataclasses because whole-tree work builds ~100 of them per file: a NamedTuple is
made straight from `struct.iter_unpack`'s tuples, several times faster than a frozen dataclass.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from typing import NamedTuple

Data = bytes | bytearray | memoryview | mmap.mmap

ELF_MAGIC = b"\x7fELF"

# e_type
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
TYPE_NAMES = {0: "NONE", ET_REL: "REL", ET_EXEC: "EXEC", ET_DYN: "DYN", ET_CORE: "CORE"}

# p_type / p_flags
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_TLS = 1, 2, 3, 7
PT_GNU_RELRO = 0x6474E552
PF_X, PF_W, PF_R = 1, 2, 4

# sh_type / sh_flags
SHT_NULL, SHT_PROGBITS, SHT_STRTAB, SHT_DYNAMIC, SHT_NOBITS, SHT_DYNSYM = 0, 1, 3, 6, 8, 11
SHT_GNU_VERDEF, SHT_GNU_VERNEED = 0x6FFFFFFD, 0x6FFFFFFE
SHF_ALLOC, SHF_TLS = 0x2, 0x400
SHN_XINDEX = 0xFFFF

# d_tag
DT_NULL, DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ = 0, 1, 4, 5, 6, 10
DT_SONAME, DT_RPATH, DT_RUNPATH, DT_FLAGS_1 = 14, 15, 29, 0x6FFFFFFB
DT_GNU_HASH, DT_VERSYM = 0x6FFFFEF5, 0x6FFFFFF0
DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
DF_1_PIE = 0x08000000
# Tags whose value is an offset into the dynamic string table.
STRING_TAGS = frozenset(
    {DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH, 0x7FFFFFFD, 0x7FFFFFFF, 0x6FFFFEFA, 0x6FFFFEFB, 0x6FFFFEFC}
)

# Machine names as `readelf` abbreviates them. Every machine is edited; the one convention that
# differs (MIPS's DT_MIPS_RLD_MAP_REL, relative to its own entry's address) is kept right in `layout`.
MACHINES = {
    2: "SPARC",
    3: "i386",
    8: "MIPS",
    10: "MIPS R3000 LE",
    18: "SPARC32+",
    42: "Renesas / SuperH SH",
    50: "IA-64",
    0x9026: "Alpha",
    20: "PowerPC",
    21: "PowerPC64",
    22: "S/390",
    40: "ARM",
    43: "SPARC64",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
    258: "LoongArch",
}


@dataclass(frozen=True, slots=True)
class Codec:
    """How one file lays out its records: 32/64-bit and byte order."""

    is64: bool
    little: bool

    @property
    def word(self) -> int:
        return 8 if self.is64 else 4

    def st(self, kind: str) -> struct.Struct:
        return _STRUCTS[(self.is64, self.little, kind)]

    def u16(self, data: Data, offset: int) -> int:
        value: int = _STRUCTS[(False, self.little, "H")].unpack_from(data, offset)[0]
        return value

    def u32(self, data: Data, offset: int) -> int:
        value: int = _STRUCTS[(False, self.little, "I")].unpack_from(data, offset)[0]
        return value

    def pack_u16(self, value: int) -> bytes:
        return _STRUCTS[(False, self.little, "H")].pack(value)


_LAYOUTS = {
    # kind: (64-bit format, 32-bit format)
    "ehdr": ("16sHHIQQQIHHHHHH", "16sHHIIIIIHHHHHH"),
    "phdr": ("IIQQQQQQ", "IIIIIIII"),
    "shdr": ("IIQQQQIIQQ", "IIIIIIIIII"),
    "dyn": ("qQ", "iI"),
    "H": ("H", "H"),
    "I": ("I", "I"),
}
_STRUCTS = {
    (is64, little, kind): struct.Struct(("<" if little else ">") + fmts[0 if is64 else 1])
    for kind, fmts in _LAYOUTS.items()
    for is64 in (True, False)
    for little in (True, False)
}


class Ehdr(NamedTuple):
    ident: bytes
    type: int
    machine: int
    version: int
    entry: int
    phoff: int
    shoff: int
    flags: int
    ehsize: int
    phentsize: int
    phnum: int
    shentsize: int
    shnum: int
    shstrndx: int

    @classmethod
    def unpack(cls, codec: Codec, data: Data) -> Ehdr:
        return cls(*codec.st("ehdr").unpack_from(data, 0))

    def pack(self, codec: Codec) -> bytes:
        return codec.st("ehdr").pack(
            self.ident, self.type, self.machine, self.version, self.entry, self.phoff, self.shoff,
            self.flags, self.ehsize, self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx,
        )  # fmt: skip


class Phdr(NamedTuple):
    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int

    @classmethod
    def unpack_table(cls, codec: Codec, data: Data, offset: int, count: int) -> tuple[Phdr, ...]:
        s = codec.st("phdr")
        raw = s.iter_unpack(bytes(data[offset : offset + count * s.size]))
        if codec.is64:
            return tuple(cls(*f) for f in raw)
        return tuple(cls(f[0], f[6], f[1], f[2], f[3], f[4], f[5], f[7]) for f in raw)

    def pack(self, codec: Codec) -> bytes:
        s = codec.st("phdr")
        if codec.is64:
            return s.pack(
                self.type,
                self.flags,
                self.offset,
                self.vaddr,
                self.paddr,
                self.filesz,
                self.memsz,
                self.align,
            )
        return s.pack(
            self.type, self.offset, self.vaddr, self.paddr, self.filesz, self.memsz, self.flags, self.align
        )

    def moved(self, offset: int, vaddr: int, size: int) -> Phdr:
        """This segment describing `size` bytes at a new place (paddr follows vaddr, as linkers emit it)."""
        return self._replace(
            offset=offset, vaddr=vaddr, paddr=self.paddr + vaddr - self.vaddr, filesz=size, memsz=size
        )

    def holds_vaddr(self, vaddr: int, size: int = 1) -> bool:
        return self.vaddr <= vaddr and vaddr + size <= self.vaddr + self.memsz


class Shdr(NamedTuple):
    name: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int

    @classmethod
    def unpack(cls, codec: Codec, data: Data, offset: int) -> Shdr:
        return cls(*codec.st("shdr").unpack_from(data, offset))

    @classmethod
    def unpack_table(cls, codec: Codec, data: Data, offset: int, count: int) -> tuple[Shdr, ...]:
        s = codec.st("shdr")
        return tuple(cls(*f) for f in s.iter_unpack(bytes(data[offset : offset + count * s.size])))

    def pack(self, codec: Codec) -> bytes:
        return codec.st("shdr").pack(
            self.name, self.type, self.flags, self.addr, self.offset, self.size,
            self.link, self.info, self.addralign, self.entsize,
        )  # fmt: skip

    @property
    def in_file(self) -> bool:
        return self.type not in (SHT_NOBITS, SHT_NULL)


class Dyn(NamedTuple):
    tag: int
    val: int


def pack_dynamic(codec: Codec, entries: list[Dyn] | tuple[Dyn, ...], capacity: int) -> bytes:
    """`entries`, then DT_NULL entries up to `capacity` (at least one terminator)."""
    s = codec.st("dyn")
    body = b"".join(s.pack(e.tag, e.val) for e in entries)
    return body + s.pack(DT_NULL, 0) * max(1, capacity - len(entries))


def align_up(value: int, alignment: int) -> int:
    return value if alignment <= 1 else -(-value // alignment) * alignment
