"""The edits beyond the dynamic loader's search facts that patchelf offers: OS ABI, executable stack,
DF_1_NODEFLIB, DT_DEBUG, clearing a symbol's version.

Each is either a dynamic entry (planned with the others, so it may grow the dynamic section like any
entry) or a few bytes at fixed places in the original file (the ELF header's EI_OSABI, a program
header's flags, `.gnu.version` entries), recorded in `Desired.writes`; none of them moves anything.
"""

from __future__ import annotations

import os

from storekit.elf import symbols, versions
from storekit.elf.edits import (
    AddDebugTag,
    ClearSymbolVersion,
    Desired,
    Entry,
    ExtraEdit,
    NoDefaultLib,
    RenameDynamicSymbols,
    SetExecstack,
    SetOsAbi,
)
from storekit.elf.format import DT_FLAGS_1, PF_X
from storekit.elf.inspect import ElfFile
from storekit.errors import ElfPatchError

PT_GNU_STACK = 0x6474E551
DT_DEBUG = 21
DF_1_NODEFLIB = 0x800
EI_OSABI = 7

#: EI_OSABI values and the names patchelf prints for them.
OS_ABIS = {
    0: "System V",
    1: "HP-UX",
    2: "NetBSD",
    3: "Linux",
    4: "GNU Hurd",
    6: "Solaris",
    7: "AIX",
    8: "IRIX",
    9: "FreeBSD",
    10: "Tru64",
    12: "OpenBSD",
    13: "OpenVMS",
}
#: Names accepted for an OS ABI (lower case), as patchelf accepts them.
OS_ABI_NAMES = {
    **{name.lower(): abi for abi, name in OS_ABIS.items()},
    "system-v": 0,
    "sysv": 0,
    "gnu": 3,
    "gnu-hurd": 4,
    "hurd": 4,
}


def os_abi(elf: ElfFile) -> int:
    return int(elf.data[EI_OSABI])


def execstack(elf: ElfFile) -> bool | None:
    """Whether PT_GNU_STACK asks for an executable stack; None without PT_GNU_STACK."""
    seg = elf.segment(PT_GNU_STACK)
    return None if seg is None else bool(seg.flags & PF_X)


def apply(elf: ElfFile, state: Desired, edit: ExtraEdit) -> None:
    if isinstance(edit, SetOsAbi):
        if not 0 <= edit.abi <= 255:
            raise ElfPatchError(elf.path, f"OS ABI {edit.abi} is not a byte")
        _write(elf, state, EI_OSABI, bytes([edit.abi]))
    elif isinstance(edit, SetExecstack):
        _set_execstack(elf, state, edit.executable)
    elif isinstance(edit, ClearSymbolVersion):
        _clear_symbol_version(elf, state, edit.name.encode())
    elif isinstance(edit, RenameDynamicSymbols):
        mapping = {os.fsencode(old): os.fsencode(new) for old, new in edit.mapping}
        for i, new in symbols.renames_by_index(elf, mapping).items():
            current = state.renames.get(i)
            if new != (current if current is not None else _name(elf, i)):
                state.renames[i] = new
    else:
        if elf.dynamic_segment is None or not elf.has_dynamic_bytes:
            raise ElfPatchError(elf.path, "has no dynamic section: there is nothing to patch")
        if isinstance(edit, NoDefaultLib):
            flags = next((e for e in state.entries if e.tag == DT_FLAGS_1), None)
            if flags is None:
                state.entries.insert(0, Entry(DT_FLAGS_1, DF_1_NODEFLIB))
            else:
                flags.val |= DF_1_NODEFLIB
        elif isinstance(edit, AddDebugTag) and not any(e.tag == DT_DEBUG for e in state.entries):
            state.entries.insert(0, Entry(DT_DEBUG, 0))


def _name(elf: ElfFile, index: int) -> bytes:
    return elf.string(versions.symbol_name_offsets(elf, index + 1)[index])


def _write(elf: ElfFile, state: Desired, offset: int, data: bytes) -> None:
    """Record `data` at `offset` unless the file (or an earlier edit) already has it there."""
    if bytes(elf.data[offset : offset + len(data)]) == data:
        state.writes.pop(offset, None)
    else:
        state.writes[offset] = data


def _set_execstack(elf: ElfFile, state: Desired, executable: bool) -> None:
    for i, p in enumerate(elf.segments):
        if p.type == PT_GNU_STACK:
            flags = p.flags | PF_X if executable else p.flags & ~PF_X
            # p_flags is the second word of a 64-bit program header, the seventh of a 32-bit one
            at = elf.header.phoff + i * elf.header.phentsize + (4 if elf.codec.is64 else 24)
            _write(elf, state, at, elf.codec.st("I").pack(flags))
            return
    raise ElfPatchError(
        elf.path, "has no PT_GNU_STACK program header: adding one would move the program headers"
    )


def _clear_symbol_version(elf: ElfFile, state: Desired, name: bytes) -> None:
    count = versions.dynsym_count(elf)
    offset = versions.versym_offset(elf, count or 0)
    if not count or offset is None:
        raise ElfPatchError(elf.path, "has no symbol versions (.gnu.version) to clear")
    for i, st_name in enumerate(versions.symbol_name_offsets(elf, count)):
        if elf.string(st_name) == name:
            _write(elf, state, offset + 2 * i, elf.codec.pack_u16(versions.VER_NDX_GLOBAL))
