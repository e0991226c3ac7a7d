"""`storekit drv`: Parse, print, check and show derivations (.drv).

The store dir of a `.drv` is the directory holding it unless `--store-dir` says otherwise (for copies
of `.drv` files kept outside their store); input derivations are read from that same directory.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from storekit.cli._options import StoreOption, local_store, print_json
from storekit.derivation import json as drv_json
from storekit.derivation.aterm import print_aterm
from storekit.derivation.fs import locate, read_derivation, read_text
from storekit.derivation.hashing import check as check_drv
from storekit.derivation.model import Derivation
from storekit.errors import InvalidDerivation

NAME = "drv"
HELP = "Parse, print, check and show derivations (.drv)."
app = typer.Typer(no_args_is_help=True)

StoreDirOption = Annotated[
    str | None,
    typer.Option(
        "--store-dir", help="The store dir the .drv belongs to (default: the directory holding it)."
    ),
]


def _write(text: str) -> None:
    """Write bytes exactly, including any that are not UTF-8 (carried as surrogate escapes)."""
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.flush()


def _closure(roots: dict[str, tuple[Path, Derivation]]) -> dict[str, tuple[Path, Derivation]]:
    """Add every input derivation, read from the directory of the file that names it."""
    found = dict(roots)
    todo = list(roots.values())
    while todo:
        file, drv = todo.pop()
        for path in drv.input_drvs:
            if path not in found:
                input_file = file.parent / Path(path).name
                found[path] = (input_file, read_derivation(input_file))
                todo.append(found[path])
    return found


@app.command("show")
def show(
    files: Annotated[list[str], typer.Argument(help=".drv files to show.")],
    store_dir: StoreDirOption = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Also show the input derivations, recursively.")
    ] = False,
) -> None:
    """Print the JSON that Nix 2.8's `nix show-derivation` prints, byte for byte."""
    drvs: dict[str, tuple[Path, Derivation]] = {}
    for file in files:
        located = locate(file, store_dir)
        drvs[located.path] = (located.file, read_derivation(located.file))
    if recursive:
        drvs = _closure(drvs)
    obj: dict[str, object] = {}
    for path in sorted(drvs):
        obj.update(drv_json.to_json(path, drvs[path][1]))
    _write(drv_json.dumps(obj) + "\n")


@app.command("print")
def print_(
    file: Annotated[str, typer.Argument(help="JSON as `nix show-derivation` prints it ('-' for stdin).")],
    drv: Annotated[
        str | None, typer.Option("--drv", help="Which derivation to print when the JSON holds several.")
    ] = None,
) -> None:
    """Print the ATerm (.drv contents, no trailing newline) of a derivation given as JSON."""
    text = (
        sys.stdin.buffer.read().decode("utf-8", "surrogateescape") if file == "-" else read_text(Path(file))
    )
    entries = drv_json.from_json_all(drv_json.loads(text))
    if drv is not None:
        entries = [(p, d) for p, d in entries if p == drv]
        if not entries:
            raise InvalidDerivation(f"'{file}' holds no derivation '{drv}'")
    if len(entries) != 1:
        raise InvalidDerivation(
            f"'{file}' holds {len(entries)} derivations; choose one with --drv "
            f"({', '.join(p for p, _ in entries)})"
        )
    _write(print_aterm(entries[0][1]))


@app.command("check")
def check(
    files: Annotated[list[str], typer.Argument(help=".drv files to check.")],
    store_dir: StoreDirOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print [{drvPath, ok, problems}] as JSON (still exit 1 on a mismatch)."),
    ] = False,
) -> None:
    """Recompute output paths and the .drv path itself; fail naming each one that does not match."""
    results: list[tuple[str, list[str]]] = []
    for file in files:
        located = locate(file, store_dir)
        drv = read_derivation(located.file)
        results.append((located.path, check_drv(located.path, drv, located.store_dir, located.lookup())))
    if as_json:
        print_json(
            [{"drvPath": path, "ok": not problems, "problems": problems} for path, problems in results]
        )
    else:
        for path, problems in results:
            if not problems:
                typer.echo(f"{path}: ok")
    failures = [f"{path}: {p}" for path, problems in results for p in problems]
    if failures:
        raise InvalidDerivation("derivation does not match what Nix computes: " + "; ".join(failures))


@app.command("instantiate")
def instantiate_command(
    recipes: Annotated[list[str], typer.Argument(help="Recipe files (.toml).")],
    store: StoreOption = None,
    system: Annotated[
        str | None, typer.Option("--system", help="Default `system` for recipes that set none.")
    ] = None,
) -> None:
    """Write the .drv of each storekit recipe (TOML) to the store, as Nix's `derivation` would; print it."""
    from storekit.realise.driver import derivation_reader
    from storekit.realise.recipe import instantiate_recipe
    from storekit.realise.runner import host_system

    with local_store(store) as s:
        for recipe in recipes:
            drv_path, _ = instantiate_recipe(s, recipe, derivation_reader(s), system=system or host_system())
            typer.echo(drv_path)
