"""`storekit elf`: Inspect and patch ELF files (rpath, interpreter, needed, soname)."""

from __future__ import annotations

import typer

NAME = "elf"
HELP = "Inspect and patch ELF files (rpath, interpreter, needed, soname)."
app = typer.Typer(no_args_is_help=True)
