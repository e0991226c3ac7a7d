"""The library resolution cache note (`patchelf --build-resolution-cache`), planned without I/O.

patchelf 0.19 records, for each DT_NEEDED library, where the run path finds it, in a note the
loader can read instead of searching the run path at start-up (nixpkgs' glibc reads it). The note is
named "NixOS", of type 0x63a86cb6, in an allocated section `.note.nixos.ldcache`; its descriptor is
NUL-terminated (library, list) pairs sorted by library, then a NUL. Each list entry is `=<path>` for
a library found in a run-path directory, or `?<dir>` for a directory the loader must still search
itself (one holding `$ORIGIN`-style tokens or a `glibc-hwcaps` subdirectory), joined by `:`.

patchelf adds a PT_LOAD and a PT_NOTE for the note; storekit adds no program headers (see `layout`),
so the note goes where the loader already looks for notes: the existing 4-byte-aligned PT_NOTE is
pointed at a copy of its notes followed by the new one, placed in the zero padding after a loaded
segment (with separate code pages every read-only segment ends in one), which that segment is
extended to cover. The original notes stay where they were, still covered by their sections. The
section header is appended to the table, and the name to the section names, written after the last
thing in the file; so removing the note (an edit of the run path or the needed libraries makes it
stale) never renumbers a section: the last header is dropped, or an inner one made SHT_NULL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from storekit.elf.format import PF_W, PF_X, PT_LOAD, SHF_ALLOC, SHT_NULL, Ehdr, Phdr, Shdr, align_up
from storekit.elf.inspect import ElfFile
from storekit.elf.layout import Copy, Fill, Piece, Write

NOTE_NAME = b"NixOS\0"
NOTE_TYPE = 0x63A86CB6
SECTION = b".note.nixos.ldcache"
PT_NOTE = 4
SHT_NOTE = 7


class NoRoom(Exception):
    """The file has no place for the note without new program headers (the message says why)."""


def descriptor(
    needed: Sequence[bytes],
    run_path: Sequence[bytes],
    readable: Callable[[bytes], bool],
    search_hint: Callable[[bytes], bool],
) -> bytes | None:
    """The note's descriptor, or None when no library resolves (nothing to write).

    `readable(path)`: whether the loader could open that file; `search_hint(dir)`: whether the dir
    must be left to the loader (tokens, glibc-hwcaps). First match wins per directory, as the loader's
    search does; an empty run-path entry (the working directory) and names with a slash are skipped."""
    searched = [lib for lib in needed if b"/" not in lib]
    entries: dict[bytes, list[bytes]] = {}
    for directory in run_path:
        if not directory:
            continue
        if b"$" in directory or search_hint(directory):
            for lib in searched:
                entries.setdefault(lib, []).append(b"?" + directory)
            continue
        for lib in searched:
            path = directory + b"/" + lib
            if readable(path):
                entries.setdefault(lib, []).append(b"=" + path)
    if not entries:
        return None
    return b"".join(lib + b"\0" + b":".join(entries[lib]) + b"\0" for lib in sorted(entries)) + b"\0"


def note_bytes(elf: ElfFile, desc: bytes) -> bytes:
    u32 = elf.codec.st("I")
    header = u32.pack(len(NOTE_NAME)) + u32.pack(len(desc)) + u32.pack(NOTE_TYPE)
    return header + _pad4(NOTE_NAME) + _pad4(desc)


def section_names(elf: ElfFile) -> tuple[int, bytes]:
    """The section-name table's index and bytes."""
    index = elf.header.shstrndx
    if not 0 < index < len(elf.sections):
        raise elf.error("has no section name table: cannot name a new section")
    s = elf.sections[index]
    return index, bytes(elf.data[s.offset : s.offset + s.size])


def find(elf: ElfFile) -> int | None:
    """The index of the `.note.nixos.ldcache` section, if any."""
    if not elf.sections or not 0 < elf.header.shstrndx < len(elf.sections):
        return None
    _, names = section_names(elf)
    for i, s in enumerate(elf.sections):
        if s.type != SHT_NULL and names[s.name : s.name + len(SECTION) + 1] == SECTION + b"\0":
            return i
    return None


def existing_descriptor(elf: ElfFile, index: int) -> bytes | None:
    """The descriptor of the note in section `index`, or None when it is not a well-formed one."""
    s = elf.sections[index]
    end = min(s.offset + s.size, elf.size)
    if s.offset + 12 > end:
        return None
    u32 = elf.codec.st("I")
    namesz, descsz = u32.unpack_from(elf.data, s.offset)[0], u32.unpack_from(elf.data, s.offset + 4)[0]
    start = s.offset + 12 + align_up(namesz, 4)
    if start + descsz > end:
        return None
    return bytes(elf.data[start : start + descsz])


def plan_add(elf: ElfFile, desc: bytes) -> tuple[tuple[Piece, ...], tuple[Write, ...], int]:
    """(pieces, writes, size) of the file with the note added; NoRoom when it has no place for it."""
    note_ph = _note_segment(elf)
    old = bytes(elf.data[note_ph[1].offset : note_ph[1].offset + note_ph[1].filesz])
    area = old + note_bytes(elf, desc)
    seg_index, seg, start = _room(elf, len(area))
    vaddr = seg.vaddr + start - seg.offset
    phdrs = list(elf.segments)
    grown = start + len(area) - seg.offset
    phdrs[seg_index] = seg._replace(filesz=grown, memsz=grown)
    phdrs[note_ph[0]] = note_ph[1].moved(start, vaddr, len(area))
    names_index, names = section_names(elf)
    note = Shdr(len(names), SHT_NOTE, SHF_ALLOC, vaddr + len(old), start + len(old), len(area) - len(old),
                0, 0, 4, 0)  # fmt: skip
    names += SECTION + b"\0"
    sections = [*elf.sections, note]
    tail = _tail_start(elf, names_index)
    shoff = align_up(tail + len(names), elf.codec.word)
    sections[names_index] = sections[names_index]._replace(offset=tail, size=len(names))
    table = b"".join(s.pack(elf.codec) for s in sections)
    header = elf.header._replace(shoff=shoff, shnum=len(sections))
    kept = min(tail, elf.size)  # past the end of the file when the names and headers go after it
    fill = bytes(tail - kept) + names + bytes(shoff - tail - len(names)) + table
    pieces: tuple[Piece, ...] = (Copy(0, kept), Fill(fill))
    writes: tuple[Write, ...] = (
        (0, header.pack(elf.codec)),
        (elf.header.phoff, b"".join(p.pack(elf.codec) for p in phdrs)),
        (start, area),
    )
    return pieces, writes, shoff + len(table)


def plan_remove(elf: ElfFile, index: int) -> tuple[Write, ...]:
    """Writes removing the note in section `index`: its bytes zeroed (they name store paths), the
    PT_NOTE covering it shortened, its section header dropped (the last) or made SHT_NULL."""
    s = elf.sections[index]
    writes: list[Write] = [(s.offset, bytes(min(s.size, max(0, elf.size - s.offset))))]
    phdrs = list(elf.segments)
    for i, p in enumerate(phdrs):
        if p.type == PT_NOTE and p.offset <= s.offset and s.offset + s.size == p.offset + p.filesz:
            phdrs[i] = p._replace(filesz=p.filesz - s.size, memsz=p.memsz - s.size)
    writes.append((elf.header.phoff, b"".join(p.pack(elf.codec) for p in phdrs)))
    header: Ehdr = elf.header
    size = elf.codec.st("shdr").size
    if index == len(elf.sections) - 1:
        header = header._replace(shnum=index)
        writes.append((elf.header.shoff + index * size, bytes(size)))
    else:
        writes.append(
            (elf.header.shoff + index * size, Shdr(0, SHT_NULL, 0, 0, 0, 0, 0, 0, 0, 0).pack(elf.codec))
        )
    writes.insert(0, (0, header.pack(elf.codec)))
    return tuple(writes)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _note_segment(elf: ElfFile) -> tuple[int, Phdr]:
    """The 4-byte-aligned PT_NOTE (GNU's build-id and ABI notes), which the new note joins."""
    for i, p in enumerate(elf.segments):
        if p.type == PT_NOTE and p.align <= 4 and p.filesz == p.memsz and p.filesz % 4 == 0:
            return i, p
    raise NoRoom("has no 4-byte-aligned PT_NOTE for the note to join (storekit adds no program headers)")


def _room(elf: ElfFile, need: int) -> tuple[int, Phdr, int]:
    """A loaded segment followed by `need` unused zero bytes, in the file and in memory."""
    loads = [(i, p) for i, p in enumerate(elf.segments) if p.type == PT_LOAD]
    ranked = sorted(loads, key=lambda ip: (bool(ip[1].flags & PF_W), bool(ip[1].flags & PF_X), ip[1].vaddr))
    for i, seg in ranked:
        if seg.filesz != seg.memsz:
            continue  # .bss follows: its memory is not the file's
        start = align_up(seg.offset + seg.filesz, 4)
        end = start + need
        vstart, vend = seg.vaddr + seg.filesz, seg.vaddr + end - seg.offset
        if end > elf.size or any(elf.data[start:end]):
            continue
        if any(j != i and _overlaps(p, start, end, vstart, vend) for j, p in enumerate(elf.segments)):
            continue
        if any(s.in_file and s.size and s.offset < end and start < s.offset + s.size for s in elf.sections):
            continue
        tables = ((elf.header.phoff, elf.header.phnum * elf.header.phentsize),
                  (elf.header.shoff, elf.header.shnum * elf.header.shentsize))  # fmt: skip
        if any(o < end and start < o + n for o, n in tables):
            continue
        return i, seg, start
    raise NoRoom(
        f"has no {need} free bytes after a loaded segment for the note (storekit adds no program headers)"
    )


def _overlaps(p: Phdr, start: int, end: int, vstart: int, vend: int) -> bool:
    """Whether loaded segment `p` holds any of file bytes [start, end) or addresses [vstart, vend)."""
    in_file = p.offset < end and start < p.offset + p.filesz
    in_memory = p.vaddr < vend and vstart < p.vaddr + p.memsz
    return p.type == PT_LOAD and (in_file or in_memory)


def _tail_start(elf: ElfFile, names_index: int) -> int:
    """Where the section names and headers can be rewritten: over the old ones when they are the last
    things in the file (the usual layout), else at its end."""
    names = elf.sections[names_index]
    table_end = elf.header.shoff + elf.header.shnum * elf.header.shentsize
    ends = [s.offset + s.size for i, s in enumerate(elf.sections) if s.in_file and i != names_index]
    ends += [elf.header.phoff + elf.header.phnum * elf.header.phentsize]
    start = min(names.offset, elf.header.shoff)
    if table_end == elf.size and names.offset + names.size <= elf.header.shoff and max(ends) <= start:
        return start
    return align_up(elf.size, elf.codec.word)
