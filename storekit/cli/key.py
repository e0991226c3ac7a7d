"""`storekit key`: Generate and inspect ed25519 signing keys in Nix's format."""

from __future__ import annotations

import typer

NAME = "key"
HELP = "Generate and inspect ed25519 signing keys in Nix's format."
app = typer.Typer(no_args_is_help=True)
