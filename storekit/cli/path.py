"""`storekit path`: Compute store paths for a store dir the way Nix does."""

from __future__ import annotations

import typer

NAME = "path"
HELP = "Compute store paths for a store dir the way Nix does."
app = typer.Typer(no_args_is_help=True)
