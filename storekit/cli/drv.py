"""`storekit drv`: Parse, print, check and show derivations (.drv)."""

from __future__ import annotations

import typer

NAME = "drv"
HELP = "Parse, print, check and show derivations (.drv)."
app = typer.Typer(no_args_is_help=True)
