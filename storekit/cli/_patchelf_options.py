"""What one `storekit patchelf` call asks for, and the error patchelf reports: shared by the parser
(`cli/patchelf.py`) and the runner (`cli/_patchelf_run.py`) without either importing the other."""

from __future__ import annotations

from dataclasses import dataclass, field


class PatchelfError(Exception):
    """An error patchelf reports as `patchelf: MESSAGE` (exit status 1)."""


@dataclass
class Options:
    """What one patchelf call asks for (patchelf keeps these as globals, set from the arguments)."""

    files: list[str] = field(default_factory=list)
    interpreter: str | None = None
    print_interpreter: bool = False
    print_os_abi: bool = False
    os_abi: str | None = None
    print_soname: bool = False
    soname: str | None = None
    shrink_rpath: bool = False
    allowed_prefixes: list[str] = field(default_factory=list)
    remove_rpath: bool = False
    set_rpath: str | None = None
    add_rpath: str | None = None
    print_rpath: bool = False
    force_rpath: bool = False
    remove_needed: set[str] = field(default_factory=set)
    replace_needed: dict[str, str] = field(default_factory=dict)
    add_needed: set[str] = field(default_factory=set)
    print_needed: bool = False
    clear_versions: set[str] = field(default_factory=set)
    no_default_lib: bool = False
    add_debug_tag: bool = False
    execstack: str | None = None  # "print", "clear" or "set"
    renames: dict[str, str] = field(default_factory=dict)
    build_resolution_cache: bool = False
    output: str | None = None
