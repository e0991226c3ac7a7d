"""`storekit template`: List storekit's flake templates and write one into a directory.

`storekit template init NAME DIR` writes the same files as `nix flake init -t storekit#NAME` run in
DIR, without needing Nix or flakes enabled; both read the templates from the same directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from storekit.cli._options import print_json
from storekit.templates import find_template, init_template, list_templates

NAME = "template"
HELP = "List storekit's flake templates and write one into a directory (like nix flake init -t)."
app = typer.Typer(no_args_is_help=True)


def _names() -> list[str]:
    return [t.name for t in list_templates()]


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print {name: {description}} as JSON.")] = False,
) -> None:
    """Print each template's name and description."""
    templates = list_templates()
    if as_json:
        print_json({t.name: {"description": t.description} for t in templates})
        return
    width = max(len(t.name) for t in templates)
    for t in templates:
        typer.echo(f"{t.name:<{width}}  {t.description}")


@app.command("init")
def init(
    name: Annotated[
        str,
        typer.Argument(help="Template name (see `storekit template list`).", autocompletion=_names),
    ],
    directory: Annotated[
        Path, typer.Argument(help="Where to write it (created if missing). Default: the current dir.")
    ] = Path("."),
) -> None:
    """Write template NAME into DIRECTORY; existing files that differ are refused, identical ones kept."""
    find_template(name)
    for path in init_template(name, directory):
        typer.echo(f"wrote: {path}", err=True)
