"""The edits `storekit elf` offers, as values, and what each does to the file's desired dynamic facts.

Edits apply one after another to a `Desired` state (the dynamic entries with their strings, the
interpreter, the libraries whose version records go or get renamed); `patch.plan` then works out
which bytes realise that state. The existing tag kind of an rpath (DT_RPATH or DT_RUNPATH) is kept
unless forced: their lookup semantics differ (DT_RPATH is searched before LD_LIBRARY_PATH and is
inherited by dependencies), so silently switching, as patchelf does, changes which libraries load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from storekit.elf.format import DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, ET_DYN, ET_EXEC, PT_INTERP
from storekit.elf.inspect import ElfFile
from storekit.errors import ElfPatchError

RpathKind = Literal["rpath", "runpath"]


@dataclass(frozen=True, slots=True)
class SetRpath:
    rpath: str
    force: RpathKind | None = None


@dataclass(frozen=True, slots=True)
class AddRpath:
    rpath: str
    force: RpathKind | None = None


@dataclass(frozen=True, slots=True)
class RemoveRpath:
    pass


@dataclass(frozen=True, slots=True)
class SetInterpreter:
    path: str


@dataclass(frozen=True, slots=True)
class AddNeeded:
    name: str
    # Where the entry goes: None after the existing DT_NEEDED entries (it interposes on nothing);
    # an index among them (0: first, patchelf's place, where it interposes on every other one).
    position: int | None = None


@dataclass(frozen=True, slots=True)
class RemoveNeeded:
    name: str


@dataclass(frozen=True, slots=True)
class ReplaceNeeded:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class SetSoname:
    name: str


@dataclass(frozen=True, slots=True)
class RewritePrefix:
    """Replace `old` by `new` at the start of the interpreter, each rpath entry and absolute NEEDED names.

    Unlike the other edits it never refuses a file it has nothing to change in (static binaries,
    objects): whole-tree work counts those as unchanged.
    """

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class SetOsAbi:
    """EI_OSABI in the ELF header (a number, as `storekit.elf.extras.OS_ABIS` names them)."""

    abi: int


@dataclass(frozen=True, slots=True)
class SetExecstack:
    """PT_GNU_STACK's PF_X flag: whether the program asks for an executable stack."""

    executable: bool


@dataclass(frozen=True, slots=True)
class NoDefaultLib:
    """DF_1_NODEFLIB in DT_FLAGS_1: the loader skips its default directories for this file's needs."""


@dataclass(frozen=True, slots=True)
class AddDebugTag:
    """A DT_DEBUG entry (debuggers find the loader's r_debug through it), unless there is one."""


@dataclass(frozen=True, slots=True)
class ClearSymbolVersion:
    """Dynamic symbols of this name become unversioned (VER_NDX_GLOBAL in .gnu.version)."""

    name: str


@dataclass(frozen=True, slots=True)
class RenameDynamicSymbols:
    """Dynamic symbols named like a key get the value as their name (hash tables rebuilt)."""

    mapping: tuple[tuple[str, str], ...]


ExtraEdit = SetOsAbi | SetExecstack | NoDefaultLib | AddDebugTag | ClearSymbolVersion | RenameDynamicSymbols

Edit = (
    RenameDynamicSymbols
    | SetOsAbi
    | SetExecstack
    | NoDefaultLib
    | AddDebugTag
    | ClearSymbolVersion
    | SetRpath
    | AddRpath
    | RemoveRpath
    | SetInterpreter
    | AddNeeded
    | RemoveNeeded
    | ReplaceNeeded
    | SetSoname
    | RewritePrefix
)


@dataclass(slots=True)
class Entry:
    """A dynamic entry in the desired state: `text` for string-valued tags; for an entry of the file,
    `orig` is its index and `orig_text` the string it points at (`val` stays the file's value)."""

    tag: int
    val: int
    text: bytes | None = None
    orig: int | None = None
    orig_text: bytes | None = None

    @property
    def unchanged_string(self) -> bool:
        return self.orig_text is not None and self.text == self.orig_text


@dataclass(slots=True)
class Desired:
    entries: list[Entry]
    interp: bytes | None
    orig_interp: bytes | None
    removed_libs: set[bytes] = field(default_factory=set)
    renamed_libs: dict[bytes, bytes] = field(default_factory=dict)
    # Bytes outside the dynamic section and its strings (ELF header, program headers, .gnu.version),
    # by offset in the original file: see `extras`.
    writes: dict[int, bytes] = field(default_factory=dict)
    renames: dict[int, bytes] = field(default_factory=dict)  # dynamic symbol index -> new name

    @classmethod
    def of(cls, elf: ElfFile) -> Desired:
        entries = []
        for i, d in enumerate(elf.dynamic):
            text = elf.string(d.val) if d.tag in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH) else None
            entries.append(Entry(d.tag, d.val, text, i, text))
        interp = elf.interpreter
        return cls(entries, interp, interp)

    def unchanged(self, elf: ElfFile) -> bool:
        """Whether this state is still exactly the file's."""
        if self.interp != self.orig_interp or self.removed_libs or self.renamed_libs:
            return False
        if self.writes or self.renames:
            return False
        if len(self.entries) != len(elf.dynamic):
            return False
        return all(
            e.orig == i
            and e.tag == elf.dynamic[i].tag
            and (e.unchanged_string if e.text is not None else e.val == elf.dynamic[i].val)
            for i, e in enumerate(self.entries)
        )

    def texts(self, tag: int) -> list[bytes]:
        return [e.text for e in self.entries if e.tag == tag and e.text is not None]


def _b(s: str) -> bytes:
    return os.fsencode(s)


def apply(elf: ElfFile, state: Desired, edit: Edit) -> None:
    """Change `state` as `edit` asks, refusing edits that make no sense for this file."""
    assert not isinstance(edit, ExtraEdit), "extras.apply takes these (see patch.plan)"
    if isinstance(edit, RewritePrefix):
        _rewrite_prefix(state, _b(edit.old), _b(edit.new))
        return
    _check_dynamic(elf, edit)
    if elf.is_static_pie and isinstance(edit, (SetRpath, AddRpath, RemoveRpath)):
        # A static-pie program loads no libraries, and glibc's self-relocation asserts that it has no
        # DT_RUNPATH/DT_RPATH: the program crashes (SIGSEGV) before main. An rpath edit of one is
        # therefore done by changing nothing, so batches over whole trees succeed and stay runnable.
        return
    if isinstance(edit, SetRpath):
        _set_rpath(state, _b(edit.rpath), edit.force)
    elif isinstance(edit, AddRpath):
        current = next((e.text for e in state.entries if e.tag in (DT_RPATH, DT_RUNPATH) and e.text), b"")
        joined = current + b":" + _b(edit.rpath) if current else _b(edit.rpath)
        _set_rpath(state, joined, edit.force)
    elif isinstance(edit, RemoveRpath):
        state.entries = [e for e in state.entries if e.tag not in (DT_RPATH, DT_RUNPATH)]
    elif isinstance(edit, SetInterpreter):
        state.interp = _b(edit.path)
    elif isinstance(edit, AddNeeded):
        _add_needed(state, _b(edit.name), edit.position)
    elif isinstance(edit, RemoveNeeded):
        name = _b(edit.name)
        if name in state.texts(DT_NEEDED):
            state.entries = [e for e in state.entries if not (e.tag == DT_NEEDED and e.text == name)]
            origin = next((k for k, v in state.renamed_libs.items() if v == name), name)
            state.renamed_libs.pop(origin, None)
            state.removed_libs.add(origin)
    elif isinstance(edit, ReplaceNeeded):
        _rename_needed(state, _b(edit.old), _b(edit.new))
    elif isinstance(edit, SetSoname):
        _set_string(state, DT_SONAME, _b(edit.name))


def _check_dynamic(elf: ElfFile, edit: Edit) -> None:
    if elf.header.type not in (ET_EXEC, ET_DYN):
        kind = {1: "a relocatable object (ET_REL)", 4: "a core dump"}.get(
            elf.header.type, "not an executable"
        )
        raise ElfPatchError(elf.path, f"is {kind}: only executables and shared libraries can be patched")
    if isinstance(edit, SetInterpreter):
        if elf.segment(PT_INTERP) is None:
            raise ElfPatchError(elf.path, "has no program interpreter (statically linked?): cannot set one")
        return
    if elf.dynamic_segment is None:
        if elf.header.type == ET_DYN and elf.segment(PT_INTERP) is None:  # a library, not a program
            raise ElfPatchError(elf.path, "has no dynamic section: there is nothing to patch")
        raise ElfPatchError(elf.path, "is statically linked (no dynamic section): there is nothing to patch")
    if not elf.has_dynamic_bytes:
        raise ElfPatchError(
            elf.path,
            "is a separate debug file (its dynamic section has no bytes in the file): "
            "there is nothing to patch",
        )
    if elf.is_static_pie and not isinstance(edit, (SetRpath, AddRpath, RemoveRpath)):
        raise ElfPatchError(
            elf.path, "is a static-pie executable: it loads no libraries, so it has none to patch"
        )
    if elf.strtab_offset < 0 and not elf.is_static_pie:
        raise ElfPatchError(elf.path, "has no dynamic string table (DT_STRTAB): cannot add strings")


def _set_rpath(state: Desired, rpath: bytes, force: RpathKind | None) -> None:
    tag = {None: None, "rpath": DT_RPATH, "runpath": DT_RUNPATH}[force]
    existing = [e for e in state.entries if e.tag in (DT_RPATH, DT_RUNPATH)]
    if not existing:
        state.entries.insert(_after_needed(state), Entry(tag or DT_RUNPATH, 0, rpath))
        return
    for e in existing:
        e.text = rpath
        if tag is not None:
            e.tag = tag
    if tag is not None:  # forced: exactly one entry of that kind remains
        state.entries = [e for e in state.entries if e.tag not in (DT_RPATH, DT_RUNPATH) or e is existing[0]]


def _add_needed(state: Desired, name: bytes, position: int | None) -> None:
    """Append after the existing DT_NEEDED entries: like adding -l at the end of the link line, the new
    library comes last in symbol lookup order and interposes on nothing already loaded."""
    if name not in state.texts(DT_NEEDED):
        needed = [i for i, e in enumerate(state.entries) if e.tag == DT_NEEDED]
        at = _after_needed(state) if position is None or position >= len(needed) else needed[position]
        state.entries.insert(at, Entry(DT_NEEDED, 0, name))
        state.removed_libs.discard(name)


def _rename_needed(state: Desired, old: bytes, new: bytes) -> None:
    found = False
    for e in state.entries:
        if e.tag == DT_NEEDED and e.text == old:
            e.text = new
            found = True
    if found and old != new:
        origin = next((k for k, v in state.renamed_libs.items() if v == old), old)
        state.renamed_libs[origin] = new


def _set_string(state: Desired, tag: int, value: bytes) -> None:
    entry = next((e for e in state.entries if e.tag == tag), None)
    if entry is None:
        state.entries.insert(_after_needed(state), Entry(tag, 0, value))
    else:
        entry.text = value


def _after_needed(state: Desired) -> int:
    last = [i for i, e in enumerate(state.entries) if e.tag == DT_NEEDED]
    return last[-1] + 1 if last else 0


def _rewrite_prefix(state: Desired, old: bytes, new: bytes) -> None:
    if state.interp is not None:
        state.interp = replace_prefix(state.interp, old, new)
    for e in state.entries:
        if e.text is None:
            continue
        if e.tag in (DT_RPATH, DT_RUNPATH):
            e.text = b":".join(replace_prefix(part, old, new) for part in e.text.split(b":"))
        elif e.tag == DT_NEEDED and e.text.startswith(b"/"):
            renamed = replace_prefix(e.text, old, new)
            if renamed != e.text:
                _rename_needed(state, e.text, renamed)


def replace_prefix(path: bytes, old: bytes, new: bytes) -> bytes:
    """`path` with a leading `old` directory replaced by `new` (whole components only)."""
    old, new = old.rstrip(b"/"), new.rstrip(b"/")
    if old and (path == old or path.startswith(old + b"/")):
        return (new + path[len(old) :]) or b"/"
    return path


def shrink_rpath(
    rpath: str,
    needed: Sequence[str],
    provides: Callable[[str, str], bool],
    allowed_prefixes: Sequence[str] = (),
) -> str:
    """Keep only the rpath directories that provide a NEEDED library not found in an earlier one.

    As patchelf does: relative entries (`$ORIGIN/…`) are kept as they are, because they cannot be
    resolved here; with `allowed_prefixes`, absolute entries outside them are dropped.
    `provides(dir, name)` says whether `dir/name` is a library this file can load.
    """
    found = [False] * len(needed)
    kept: list[str] = []
    for d in rpath.split(":"):
        if not d:
            continue
        if not d.startswith("/"):
            kept.append(d)
            continue
        if allowed_prefixes and not any(d.startswith(p) for p in allowed_prefixes):
            continue
        hits = [i for i, name in enumerate(needed) if not found[i] and provides(d, name)]
        for i in hits:
            found[i] = True
        if hits:
            kept.append(d)
    return ":".join(kept)
