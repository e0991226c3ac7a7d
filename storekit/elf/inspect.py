"""Read an ELF file's dynamic linking facts with struct on a buffer (bytes or mmap): fast and checked.

Whole-tree work parses thousands of files, so this reads only the headers, the dynamic section and the
strings it names (~0.05 ms a file) instead of building pyelftools' full model. Every offset is checked
against the file before use: a truncated or inconsistent file raises `ElfError` naming it, never
`struct.error` or a silent wrong answer.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Any

from storekit.elf.format import (
    DF_1_PIE,
    DT_FLAGS_1,
    DT_NEEDED,
    DT_NULL,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_STRSZ,
    DT_STRTAB,
    ELF_MAGIC,
    ET_DYN,
    MACHINES,
    PT_DYNAMIC,
    PT_INTERP,
    PT_LOAD,
    SHN_XINDEX,
    SHT_NOBITS,
    SHT_NULL,
    TYPE_NAMES,
    Codec,
    Dyn,
    Ehdr,
    Phdr,
    Shdr,
)
from storekit.errors import ElfError

Buffer = bytes | bytearray | mmap.mmap
MAX_PHNUM = 0xFFFF - 1  # PN_XNUM (0xffff) would move the count to section 0: not supported


@dataclass(frozen=True, slots=True)
class ElfFacts:
    """What `storekit elf print` shows: the facts the dynamic loader acts on."""

    elf_class: int
    byte_order: str
    machine: str
    type: str
    interpreter: str | None
    rpath: str | None
    runpath: str | None
    needed: tuple[str, ...]
    soname: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "class": f"ELF{self.elf_class}",
            "byte_order": self.byte_order,
            "machine": self.machine,
            "type": self.type,
            "interpreter": self.interpreter,
            "rpath": self.rpath,
            "runpath": self.runpath,
            "needed": list(self.needed),
            "soname": self.soname,
        }


@dataclass(frozen=True, slots=True, eq=False)
class ElfFile:
    """A parsed view over one file's buffer: headers, the dynamic entries and the dynamic string table."""

    path: str
    data: Buffer
    codec: Codec
    header: Ehdr
    segments: tuple[Phdr, ...]
    sections: tuple[Shdr, ...]
    dynamic_segment: Phdr | None
    dynamic: tuple[Dyn, ...]  # entries before the first DT_NULL
    strtab_offset: int  # file offset of the dynamic string table, -1 without one
    strtab_size: int

    @property
    def size(self) -> int:
        return len(self.data)

    def error(self, message: str) -> ElfError:
        return ElfError(self.path, message)

    def tag(self, tag: int) -> int | None:
        """The value of the first dynamic entry with `tag`, or None."""
        return next((d.val for d in self.dynamic if d.tag == tag), None)

    def segment(self, p_type: int) -> Phdr | None:
        return next((p for p in self.segments if p.type == p_type), None)

    @property
    def loads(self) -> list[Phdr]:
        return [p for p in self.segments if p.type == PT_LOAD]

    def vaddr_to_offset(self, vaddr: int, size: int = 1) -> int:
        """The file offset holding `size` bytes at `vaddr`, through the PT_LOAD that maps them."""
        for p in self.segments:
            if p.type == PT_LOAD and p.vaddr <= vaddr and vaddr + size <= p.vaddr + p.filesz:
                return p.offset + vaddr - p.vaddr
        raise self.error(f"inconsistent ELF headers: address {vaddr:#x} (+{size}) is not in the file")

    def string(self, offset: int) -> bytes:
        """The NUL-terminated string at `offset` in the dynamic string table."""
        if not 0 <= offset < self.strtab_size:
            raise self.error(f"inconsistent ELF headers: string offset {offset} outside .dynstr")
        start = self.strtab_offset + offset
        end = self.data.find(b"\0", start, self.strtab_offset + self.strtab_size)
        if end < 0:
            raise self.error("inconsistent ELF headers: unterminated string in .dynstr")
        return bytes(self.data[start:end])

    def strings(self, tag: int) -> list[bytes]:
        return [self.string(d.val) for d in self.dynamic if d.tag == tag]

    @property
    def interpreter(self) -> bytes | None:
        p = self.segment(PT_INTERP)
        if p is None or p.filesz == 0:  # a separate debug file keeps the header, not the bytes
            return None
        raw = bytes(self.data[p.offset : p.offset + p.filesz])
        return raw.split(b"\0", 1)[0]

    @property
    def has_dynamic_bytes(self) -> bool:
        """Whether the dynamic section is in the file (not in a separate debug file's empty segment)."""
        return self.dynamic_segment is not None and not _without_bytes(self.dynamic_segment, self.sections)

    @property
    def is_static_pie(self) -> bool:
        flags = self.tag(DT_FLAGS_1) or 0
        return self.header.type == ET_DYN and self.segment(PT_INTERP) is None and bool(flags & DF_1_PIE)

    def identity(self) -> tuple[int, str, str, str]:
        """Class, byte order, machine and type, as `ElfFacts` shows them."""
        machine, kind = self.header.machine, self.header.type
        return (
            64 if self.codec.is64 else 32,
            "little" if self.codec.little else "big",
            MACHINES.get(machine, f"unknown ({machine})"),
            TYPE_NAMES.get(kind, f"unknown ({kind})"),
        )

    def facts(self) -> ElfFacts:
        def text(raw: bytes | None) -> str | None:
            return None if raw is None else raw.decode("utf-8", "surrogateescape")

        def first(tag: int) -> str | None:
            found = self.strings(tag)
            return text(found[0]) if found else None

        return ElfFacts(
            *self.identity(),
            interpreter=text(self.interpreter),
            rpath=first(DT_RPATH),
            runpath=first(DT_RUNPATH),
            needed=tuple(s.decode("utf-8", "surrogateescape") for s in self.strings(DT_NEEDED)),
            soname=first(DT_SONAME),
        )


def is_elf(head: bytes) -> bool:
    return head[:4] == ELF_MAGIC


def parse(data: Buffer, path: str = "") -> ElfFile:
    """Parse and check the headers, the dynamic section and its string table of one ELF file."""
    codec, header = _header(data, path)
    size = len(data)

    def fail(message: str) -> ElfError:
        return ElfError(path, message)

    segments: tuple[Phdr, ...] = ()
    if header.phnum:
        _check_table(
            header.phoff, header.phnum, header.phentsize, codec.st("phdr").size, size, "program", fail
        )
        segments = Phdr.unpack_table(codec, data, header.phoff, header.phnum)
    sections = _sections(codec, header, data, fail)
    for p in segments:
        if p.type == PT_LOAD and p.filesz > p.memsz:
            raise fail("inconsistent ELF headers: a PT_LOAD has p_filesz > p_memsz")
        if p.type != 0 and p.filesz and p.offset + p.filesz > size:
            raise fail(
                f"truncated ELF file: a segment ends at byte {p.offset + p.filesz}, the file has {size}"
            )
    end = max((s.offset + s.size for s in sections if s.type not in (SHT_NULL, SHT_NOBITS)), default=0)
    if end > size:
        raise fail(f"truncated ELF file: a section ends at byte {end}, the file has {size}")
    dyn_seg = next((p for p in segments if p.type == PT_DYNAMIC), None)
    if dyn_seg is None or _without_bytes(dyn_seg, sections):
        return ElfFile(path, data, codec, header, segments, sections, dyn_seg, (), -1, 0)
    dynamic = _dynamic(codec, data, dyn_seg, fail)
    elf = ElfFile(path, data, codec, header, segments, sections, dyn_seg, dynamic, -1, 0)
    strtab, strsz = elf.tag(DT_STRTAB), elf.tag(DT_STRSZ)
    if strtab is None or strsz is None:
        if any(d.tag in (DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME) for d in dynamic):
            raise fail(
                "inconsistent ELF headers: dynamic section names strings but has no DT_STRTAB/DT_STRSZ"
            )
        return elf
    offset = elf.vaddr_to_offset(strtab, strsz)
    return ElfFile(path, data, codec, header, segments, sections, dyn_seg, dynamic, offset, strsz)


def _header(data: Buffer, path: str) -> tuple[Codec, Ehdr]:
    if len(data) < 4 or data[:4] != ELF_MAGIC:
        raise ElfError(path, "not an ELF file")
    if len(data) < 6 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfError(path, "unsupported ELF file: unknown class or byte order in e_ident")
    codec = Codec(is64=data[4] == 2, little=data[5] == 1)
    need = codec.st("ehdr").size
    if len(data) < need:
        raise ElfError(
            path, f"truncated ELF file: the ELF header needs {need} bytes, the file has {len(data)}"
        )
    header = Ehdr.unpack(codec, data)
    if data[6] != 1 or header.version != 1:
        raise ElfError(path, "unsupported ELF file: unknown ELF version")
    if header.phnum > MAX_PHNUM:
        raise ElfError(path, "unsupported ELF file: extended program header numbering (PN_XNUM)")
    return codec, header


def _check_table(
    offset: int, count: int, entsize: int, expected: int, size: int, what: str, fail: Any
) -> None:
    if entsize != expected:
        raise fail(
            f"inconsistent ELF headers: {what} header entries are {entsize} bytes, expected {expected}"
        )
    if offset + count * entsize > size:
        raise fail(
            f"truncated ELF file: the {what} header table ends at byte {offset + count * entsize}, "
            f"the file has {size}"
        )


def _sections(codec: Codec, header: Ehdr, data: Buffer, fail: Any) -> tuple[Shdr, ...]:
    if header.shoff == 0:
        return ()
    entsize = codec.st("shdr").size
    _check_table(header.shoff, 1, header.shentsize, entsize, len(data), "section", fail)
    count = header.shnum or Shdr.unpack(codec, data, header.shoff).size  # extended numbering
    _check_table(header.shoff, count, header.shentsize, entsize, len(data), "section", fail)
    sections = Shdr.unpack_table(codec, data, header.shoff, count)
    index = sections[0].link if header.shstrndx == SHN_XINDEX and sections else header.shstrndx
    if count and index >= count:
        raise fail(f"inconsistent ELF headers: e_shstrndx {index} is not a section (there are {count})")
    return sections


def _without_bytes(seg: Phdr, sections: tuple[Shdr, ...]) -> bool:
    """Whether a dynamic segment has no bytes in the file: a separate debug file (`strip
    --only-keep-debug`, Nix's `debug` outputs) keeps the program headers but makes the sections
    SHT_NOBITS; linker scripts can emit an empty one. Such a file has no dynamic facts to read or edit."""
    if seg.filesz == 0:
        return True
    return any(s.type == SHT_NOBITS and s.addr == seg.vaddr and s.size for s in sections)


def _dynamic(codec: Codec, data: Buffer, seg: Phdr, fail: Any) -> tuple[Dyn, ...]:
    s = codec.st("dyn")
    raw = bytes(data[seg.offset : seg.offset + seg.filesz - seg.filesz % s.size])
    entries: list[Dyn] = []
    for tag, val in s.iter_unpack(raw):
        if tag == DT_NULL:
            return tuple(entries)
        entries.append(Dyn(tag, val))
    raise fail("inconsistent ELF headers: the dynamic section has no DT_NULL terminator")


def dynamic_capacity(elf: ElfFile) -> int:
    """How many entries (terminator included) fit where the dynamic section is now."""
    seg = elf.dynamic_segment
    return 0 if seg is None else seg.filesz // elf.codec.st("dyn").size
