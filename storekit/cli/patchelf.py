"""`storekit patchelf ARGS…`: patchelf 0.19's command line, so scripts that call patchelf can call storekit.

The arguments are taken raw (no click parsing: patchelf has its own `--debug`, takes `--` as a file
name and `@file` for an argument's value), every option means what it means to patchelf 0.19, and the
output is patchelf's: what the `--print-*` options print, `patchelf: …` on stderr and exit status 1 on
an error (files before the failing one stay patched, as with patchelf). The operations of one call run
in patchelf's order whatever the order on the command line, and every print shows the file as it was.
The edits are storekit's own (see docs/elf.md): files are written through a temp file and rename, the
old strings are cleared, `--remove-needed` also drops the library's version requirements, and
`--add-needed` skips a library that is already needed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from storekit import __version__
from storekit.cli._patchelf_options import Options, PatchelfError
from storekit.errors import ElfError, StorekitError

NAME = "patchelf"
HELP = "patchelf 0.19's command line (raw arguments; see `storekit patchelf --help`)."
VERSION = "0.19.0"

_T2 = "\t\t"
#: patchelf's help text, word for word (it goes to stderr).
USAGE = "\n".join(
    [
        "syntax: {prog}",
        "  [--set-interpreter FILENAME]",
        "  [--page-size SIZE]",
        "  [--print-interpreter]",
        f"  [--print-os-abi]{_T2}Prints 'EI_OSABI' field of ELF header",
        f"  [--set-os-abi ABI]{_T2}Sets 'EI_OSABI' field of ELF header to ABI.",
        f"  [--print-soname]{_T2}Prints 'DT_SONAME' entry of .dynamic section. "
        "Raises an error if DT_SONAME doesn't exist",
        f"  [--set-soname SONAME]{_T2}Sets 'DT_SONAME' entry to SONAME.",
        "  [--set-rpath RPATH]",
        "  [--add-rpath RPATH]",
        "  [--remove-rpath]",
        "  [--shrink-rpath]",
        f"  [--allowed-rpath-prefixes PREFIXES]{_T2}With '--shrink-rpath', "
        "reject rpath entries not starting with the allowed prefix",
        "  [--print-rpath]",
        "  [--force-rpath]",
        "  [--add-needed LIBRARY]",
        "  [--remove-needed LIBRARY]",
        "  [--replace-needed LIBRARY NEW_LIBRARY]",
        "  [--print-needed]",
        "  [--no-default-lib]",
        f"  [--no-sort]{_T2}Do not sort program+section headers; useful for debugging patchelf.",
        "  [--clear-symbol-version SYMBOL]",
        "  [--add-debug-tag]",
        "  [--build-resolution-cache]",
        f"  [--print-execstack]{_T2}Prints whether the object requests an executable stack",
        "  [--clear-execstack]",
        "  [--set-execstack]",
        "  [--rename-dynamic-symbols NAME_MAP_FILE]\tRenames dynamic symbols. "
        "The map file should contain two symbols (old_name new_name) per line",
        f"  [--no-clobber-old-sections]{_T2}Do not clobber old section values - "
        "only use when the binary expects to find section info at the old location.",
        "  [--output FILE]",
        "  [--debug]",
        "  [--version]",
        "  FILENAME...",
        "",
    ]
)


def _resolve(arg: str) -> str:
    """`@FILE` stands for the whole content of FILE, as patchelf reads it."""
    if not arg.startswith("@"):
        return arg
    path = arg[1:]
    try:
        with open(path, "rb") as f:
            return os.fsdecode(f.read())
    except OSError as e:
        raise PatchelfError(f"getting info about '{path}': {e.strerror}") from e


def _rename_map(path: str, seen: dict[str, str]) -> dict[str, str]:
    """`OLD NEW` per line (whitespace-separated), checked as patchelf checks it."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        raise PatchelfError(f"Cannot open map file {path}") from None
    out: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        words = line.split()
        if not words:
            break
        if len(words) < 2:
            raise PatchelfError(f"{path}:{n}: Map file line is missing the second element")
        old, new = words[0], words[1]
        if old in out or old in seen:
            raise PatchelfError(f"{path}:{n}: Name '{old}' appears twice in the map file")
        if "@" in old or "@" in new:
            raise PatchelfError(f"{path}:{n}: Name pair contains version tag: {old} {new}")
        out[old] = new
    return out


_FLAGS = {
    "--print-interpreter": "print_interpreter",
    "--print-os-abi": "print_os_abi",
    "--print-soname": "print_soname",
    "--remove-rpath": "remove_rpath",
    "--shrink-rpath": "shrink_rpath",
    "--print-rpath": "print_rpath",
    "--force-rpath": "force_rpath",
    "--print-needed": "print_needed",
    "--no-default-lib": "no_default_lib",
    "--add-debug-tag": "add_debug_tag",
}
_IGNORED = {"--no-sort", "--debug", "--no-clobber-old-sections"}  # layout and logging knobs of patchelf


def parse(argv: list[str]) -> Options | str:
    """The options of one call, or "help"/"version" when patchelf would print that and stop."""
    o = Options()
    it = iter(argv)

    def value() -> str:
        try:
            return next(it)
        except StopIteration:
            raise PatchelfError("missing argument") from None

    for arg in it:
        if arg in _FLAGS:
            setattr(o, _FLAGS[arg], True)
        elif arg in _IGNORED:
            pass
        elif arg in ("--set-interpreter", "--interpreter"):
            o.interpreter = _resolve(value())
        elif arg == "--page-size":
            size = value()
            if not size.lstrip("+-").isdigit() or int(size) <= 0:
                raise PatchelfError("invalid argument to --page-size")
        elif arg == "--set-os-abi":
            o.os_abi = _resolve(value())
        elif arg == "--set-soname":
            o.soname = _resolve(value())
        elif arg == "--allowed-rpath-prefixes":
            o.allowed_prefixes = [p for p in value().split(":") if p]
        elif arg == "--set-rpath":
            o.set_rpath = _resolve(value())
        elif arg == "--add-rpath":
            o.add_rpath = _resolve(value())
        elif arg == "--add-needed":
            o.add_needed.add(_resolve(value()))
        elif arg == "--remove-needed":
            o.remove_needed.add(_resolve(value()))
        elif arg == "--replace-needed":
            old, new = value(), value()
            o.replace_needed[old] = new
        elif arg == "--clear-symbol-version":
            o.clear_versions.add(_resolve(value()))
        elif arg in ("--print-execstack", "--clear-execstack", "--set-execstack"):
            # patchelf applies one of them, in this order of precedence
            rank = ["print", "clear", "set"]
            mode = arg.split("-")[2]
            o.execstack = mode if o.execstack is None else min(o.execstack, mode, key=rank.index)
        elif arg == "--output":
            o.output = _resolve(value())
        elif arg == "--rename-dynamic-symbols":
            o.renames.update(_rename_map(value(), o.renames))
        elif arg == "--build-resolution-cache":
            o.build_resolution_cache = True
        elif arg in ("--help", "-h"):
            return "help"
        elif arg == "--version":
            return "version"
        else:
            o.files.append(arg)
    if not o.files:
        raise PatchelfError("missing filename")
    if o.output is not None and len(o.files) != 1:
        raise PatchelfError("--output option only allowed with single input file")
    if o.set_rpath is not None and o.add_rpath is not None:
        raise PatchelfError("--set-rpath option not allowed with --add-rpath")
    if o.force_rpath and o.build_resolution_cache:
        raise PatchelfError("--build-resolution-cache cannot be combined with --force-rpath")
    return o


def _patchelf_words(e: Exception) -> str:
    """patchelf's words for the refusals scripts look for; storekit's (naming the file) otherwise."""
    if isinstance(e, ElfError) and str(e).endswith(": not an ELF file"):
        return "not an ELF executable"
    return str(e)


def main(argv: list[str], out: Callable[[bytes], Any] | None = None) -> int:
    """Run one patchelf call; the exit status. `out` receives what goes to stdout."""
    write = out if out is not None else sys.stdout.buffer.write
    if not argv:
        sys.stderr.write(USAGE.format(prog="patchelf"))
        return 1
    try:
        options = parse(argv)
        if options == "help":
            sys.stderr.write(USAGE.format(prog="patchelf"))
            return 0
        if options == "version":
            write(f"patchelf {VERSION} (storekit {__version__})\n".encode())
            return 0
        assert isinstance(options, Options)
        from storekit.cli._patchelf_run import run_file  # the ELF editor, loaded for files only

        for name in options.files:
            run_file(name, options, write)
    except (PatchelfError, StorekitError) as e:
        sys.stdout.flush()
        sys.stderr.write(f"patchelf: {_patchelf_words(e)}\n")
        return 1
    return 0


CONTEXT_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True}


def command(ctx: typer.Context) -> None:
    """Reached through typer only for `storekit --help` listings and `python -m storekit`-less embedding:
    `storekit.cli.main` passes the raw arguments to `main` before typer sees them."""
    sys.exit(main(list(ctx.args)))
