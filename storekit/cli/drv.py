"""`storekit drv`: Parse, print, check and show derivations (.drv).

The store dir of a `.drv` is the directory holding it unless `--store-dir` says otherwise (for copies
of `.drv` files kept outside their store); input derivations are read from that same directory.
"""

from __future__ import annotations

import posixpath
import sys
from pathlib import Path
from typing import Annotated

import typer

from storekit.cli._options import StoreOption, local_store, print_json
from storekit.derivation import json as drv_json
from storekit.derivation import jsonform
from storekit.derivation.aterm import print_aterm
from storekit.derivation.fs import locate, read_derivation, read_text
from storekit.derivation.hashing import check as check_drv
from storekit.derivation.model import Derivation
from storekit.errors import InvalidDerivation
from storekit.storepath import StoreDir

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


JsonFormatOption = Annotated[
    int,
    typer.Option(
        "--json-format",
        help="0: Nix 2.8's `nix show-derivation`; 1: Nix 2.15's `nix derivation show` (a `name`); "
        "2: Nix 2.23 (`method`, `hashAlgo`); 3: version 3 (base names); "
        "4: version 4 ({version, derivations}).",
        min=0,
        max=4,
    ),
]


@app.command("show")
def show(
    files: Annotated[list[str], typer.Argument(help=".drv files to show.")],
    store_dir: StoreDirOption = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Also show the input derivations, recursively.")
    ] = False,
    json_format: JsonFormatOption = 0,
) -> None:
    """Print a derivation's JSON as Nix prints it, byte for byte (by default Nix 2.8's `show-derivation`)."""
    drvs: dict[str, tuple[Path, Derivation]] = {}
    dirs = set()
    for file in files:
        located = locate(file, store_dir)
        dirs.add(located.store_dir)
        drvs[located.path] = (located.file, read_derivation(located.file))
    if recursive:
        drvs = _closure(drvs)
    if json_format and len(dirs) > 1:
        raise InvalidDerivation("these .drv files are in different store dirs; name one with --store-dir")
    entries = [(path, drv) for path, (_, drv) in drvs.items()]
    _write(jsonform.render(jsonform.show(entries, dirs.pop(), json_format), json_format))


def _read_json(file: str, store_dir: str | None, drv: str | None) -> jsonform.Entry:
    """The one derivation of a JSON file in any form (`--drv` picks one of several)."""
    text = (
        sys.stdin.buffer.read().decode("utf-8", "surrogateescape") if file == "-" else read_text(Path(file))
    )
    sd = StoreDir(store_dir) if store_dir is not None else None
    entries = jsonform.from_json_any(drv_json.loads(text), sd)
    if drv is not None:
        entries = [e for e in entries if e.path is not None and drv in (e.path, posixpath.basename(e.path))]
        if not entries:
            raise InvalidDerivation(f"'{file}' holds no derivation '{drv}'")
    if len(entries) != 1:
        raise InvalidDerivation(
            f"'{file}' holds {len(entries)} derivations; choose one with --drv "
            f"({', '.join(str(e.path) for e in entries)})"
        )
    return entries[0]


JsonStoreDirOption = Annotated[
    str | None,
    typer.Option(
        "--store-dir",
        help="The store dir of the base names in JSON formats 3 and 4 (default /nix/store).",
    ),
]
WhichDrvOption = Annotated[
    str | None, typer.Option("--drv", help="Which derivation to print when the JSON holds several.")
]


@app.command("print")
def print_(
    file: Annotated[
        str,
        typer.Argument(help="Derivation JSON of any Nix version, bare or as `show` prints it ('-': stdin)."),
    ],
    drv: WhichDrvOption = None,
    store_dir: JsonStoreDirOption = None,
) -> None:
    """Print the ATerm (.drv contents, no trailing newline) of a derivation given as JSON."""
    _write(print_aterm(_read_json(file, store_dir, drv).drv))


@app.command("add")
def add(
    file: Annotated[str, typer.Argument(help="Derivation JSON of any Nix version ('-': stdin).")],
    store: StoreOption = None,
    drv: WhichDrvOption = None,
) -> None:
    """Write a derivation given as JSON into the store and print its path, as `nix derivation add` does.

    Its output paths must be the ones Nix computes (input derivations are read from the store).
    """
    from storekit.store.derivations import add_derivation

    with local_store(store) as s:
        entry = _read_json(file, s.store_dir.path, drv)
        typer.echo(add_derivation(s, entry.drv, entry.name, entry.path))


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
    from storekit.realise.system import host_system

    with local_store(store) as s:
        for recipe in recipes:
            drv_path, _ = instantiate_recipe(s, recipe, derivation_reader(s), system=system or host_system())
            typer.echo(drv_path)
