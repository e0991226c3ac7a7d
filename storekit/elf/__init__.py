"""ELF editing at patchelf's level: inspect and patch rpath, interpreter, needed libraries, soname.

The core is pure (`inspect.parse` reads a buffer, `patch.plan` returns the bytes to write); `fs` is
the only module touching the disk, `tree` walks whole trees in one process.
"""

from __future__ import annotations

from storekit.elf.edits import (
    AddNeeded,
    AddRpath,
    Edit,
    RemoveNeeded,
    RemoveRpath,
    ReplaceNeeded,
    RewritePrefix,
    SetInterpreter,
    SetRpath,
    SetSoname,
    shrink_rpath,
)
from storekit.elf.inspect import ElfFacts, ElfFile, parse
from storekit.elf.patch import Patch, plan

__all__ = [
    "AddNeeded",
    "AddRpath",
    "Edit",
    "ElfFacts",
    "ElfFile",
    "Patch",
    "RemoveNeeded",
    "RemoveRpath",
    "ReplaceNeeded",
    "RewritePrefix",
    "SetInterpreter",
    "SetRpath",
    "SetSoname",
    "parse",
    "plan",
    "shrink_rpath",
]
