"""One file of a `storekit patchelf` call: patchelf 0.19's prints, then its edits in its order.

patchelf finds things by section name (`.interp`, `.dynamic`); storekit reads the program headers,
which is what the loader uses. The refusals keep patchelf's words where a script may look for them
("cannot find section '.interp'", "… most likely statically linked").
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from storekit.cli._patchelf_options import Options, PatchelfError
from storekit.elf import extras
from storekit.elf.edits import (
    AddDebugTag,
    AddNeeded,
    ClearSymbolVersion,
    Edit,
    NoDefaultLib,
    RemoveNeeded,
    RemoveRpath,
    RenameDynamicSymbols,
    ReplaceNeeded,
    RpathKind,
    SetExecstack,
    SetInterpreter,
    SetOsAbi,
    SetRpath,
    SetSoname,
    shrink_rpath,
)
from storekit.elf.format import DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, ET_DYN, PT_INTERP
from storekit.elf.fs import CACHE_OUTCOMES, build_resolution_cache, edit_file, library_provider, open_elf
from storekit.elf.inspect import ElfFile

Write = Callable[[bytes], Any]


def _missing(section: str) -> PatchelfError:
    return PatchelfError(f"cannot find section '{section}'. The input file is most likely statically linked")


def _dynamic(elf: ElfFile) -> bool:
    """Whether there is a dynamic section with bytes (False: a separate debug file's empty one);
    patchelf's error when there is none at all."""
    if elf.dynamic_segment is None:
        raise _missing(".dynamic")
    return elf.has_dynamic_bytes


def _rpath(elf: ElfFile) -> bytes | None:
    """DT_RUNPATH, else DT_RPATH (patchelf's choice when a file has both)."""
    runpath = elf.strings(DT_RUNPATH)
    if runpath:
        return runpath[0]
    rpath = elf.strings(DT_RPATH)
    return rpath[0] if rpath else None


def run_file(name: str, o: Options, write: Write) -> None:
    if not os.path.exists(name):
        raise PatchelfError(f"getting info about '{name}': No such file or directory")
    with open_elf(name) as elf:
        _prints(elf, o, write)
        edits = _edits(elf, o)
    if edits or o.output is not None:
        edit_file(name, edits, o.output)
    if o.build_resolution_cache:  # last, as patchelf: on what the edits made
        outcome = build_resolution_cache(o.output if o.output is not None else name)
        if CACHE_OUTCOMES[outcome]:
            sys.stderr.write(f"warning: --build-resolution-cache: {CACHE_OUTCOMES[outcome]}\n")


def _prints(elf: ElfFile, o: Options, write: Write) -> None:
    if o.print_interpreter:
        interp = elf.interpreter
        if interp is None and elf.segment(PT_INTERP) is None:
            raise _missing(".interp")
        write((interp or b"") + b"\n")
    if o.print_os_abi:
        abi = extras.os_abi(elf)
        write(extras.OS_ABIS.get(abi, f"0x{abi:02X}").encode() + b"\n")
    if o.print_soname and elf.header.type == ET_DYN and _dynamic(elf):
        soname = elf.strings(DT_SONAME)
        if soname and soname[0]:
            write(soname[0] + b"\n")
    if o.print_rpath and _dynamic(elf):
        write((_rpath(elf) or b"") + b"\n")
    if o.execstack == "print":
        state = extras.execstack(elf)
        write(f"execstack: {'?' if state is None else 'X' if state else '-'}\n".encode())
    if o.print_needed and _dynamic(elf):
        for lib in elf.strings(DT_NEEDED):
            write(lib + b"\n")


def _edits(elf: ElfFile, o: Options) -> list[Edit]:
    """patchelf's operations, in the order patchelf applies them."""
    out: list[Edit] = []
    if o.os_abi is not None:
        abi = extras.OS_ABI_NAMES.get(o.os_abi.strip().lower())
        if abi is None:
            raise PatchelfError("unrecognized OS ABI")
        out.append(SetOsAbi(abi))
    if o.soname is not None and elf.header.type == ET_DYN and _dynamic(elf):  # patchelf: libraries only
        out.append(SetSoname(o.soname))
    if o.interpreter is not None:
        if elf.segment(PT_INTERP) is None:
            raise _missing(".interp")
        out.append(SetInterpreter(o.interpreter))
    if o.execstack in ("set", "clear"):
        out.append(SetExecstack(o.execstack == "set"))
    out += _rpath_edits(elf, o)
    needs_dynamic = o.remove_needed or o.replace_needed or o.add_needed or o.no_default_lib or o.add_debug_tag
    if needs_dynamic and not _dynamic(elf):
        return out
    out += [RemoveNeeded(lib) for lib in sorted(o.remove_needed)]
    out += [ReplaceNeeded(old, new) for old, new in sorted(o.replace_needed.items())]
    out += [AddNeeded(lib, i) for i, lib in enumerate(sorted(o.add_needed))]  # first, as patchelf
    out += [ClearSymbolVersion(sym) for sym in sorted(o.clear_versions)]
    if o.no_default_lib:
        out.append(NoDefaultLib())
    if o.add_debug_tag:
        out.append(AddDebugTag())
    if o.renames:
        out.append(RenameDynamicSymbols(tuple(o.renames.items())))
    return out


def _rpath_edits(elf: ElfFile, o: Options) -> list[Edit]:
    wanted = o.shrink_rpath or o.remove_rpath or o.set_rpath is not None or o.add_rpath is not None
    if not wanted or not _dynamic(elf):
        return []
    # patchelf turns DT_RPATH into DT_RUNPATH unless --force-rpath, and DT_RUNPATH into DT_RPATH with it
    force: RpathKind = "rpath" if o.force_rpath else "runpath"
    current = _rpath(elf)
    if o.shrink_rpath:
        if current is None:
            return []
        facts = elf.facts()
        provides = library_provider(facts.elf_class, elf.header.machine)
        needed = list(facts.needed)
        text = os.fsdecode(current)
        return [SetRpath(shrink_rpath(text, needed, provides, o.allowed_prefixes), force)]
    if o.remove_rpath:
        return [RemoveRpath()]
    if o.set_rpath is not None:
        return [SetRpath(o.set_rpath, force)]
    assert o.add_rpath is not None
    joined = os.fsdecode(current) + ":" + o.add_rpath if current else o.add_rpath
    return [SetRpath(joined, force)]
