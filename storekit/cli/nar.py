"""`storekit nar`: Write, read, list and restore Nix archives (NAR)."""

from __future__ import annotations

import typer

NAME = "nar"
HELP = "Write, read, list and restore Nix archives (NAR)."
app = typer.Typer(no_args_is_help=True)
