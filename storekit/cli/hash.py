"""`storekit hash`: Compute hashes of files and paths the way `nix hash` does."""

from __future__ import annotations

import typer

NAME = "hash"
HELP = "Compute hashes of files and paths the way `nix hash` does."
app = typer.Typer(no_args_is_help=True)
