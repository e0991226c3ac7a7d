"""`storekit store realisation`: where a content-addressed derivation's outputs went, like
`nix realisation info` (registered in `store`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from storekit.cli._options import StoreOption, complete_store_path, local_store, resolve_path


def realisation(
    derivations: Annotated[
        list[str],
        typer.Argument(
            help="Derivations: a .drv path, or DRV!OUT[,OUT…] for chosen outputs.",
            autocompletion=complete_store_path,
            show_default=False,
        ),
    ],
    store: StoreOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print `nix realisation info --json`'s list of realisations.")
    ] = False,
) -> None:
    """Show the realisations of derivations' outputs: `<hash>!<output> <path>`, one per line."""
    from storekit.errors import StoreError
    from storekit.realise.content_addressed import drv_outputs, modulo_hasher
    from storekit.wire.common import realisation_to_json

    found = []
    with local_store(store) as s:
        hasher = modulo_hasher(s)
        for text in derivations:
            path_text, bang, outs = text.partition("!")
            drv_path = resolve_path(s, path_text)
            keys = drv_outputs(hasher, hasher.lookup(str(drv_path)), drv_path.name.removesuffix(".drv"))
            for output in outs.split(",") if bang else sorted(keys):
                if output not in keys:
                    raise StoreError(f"derivation '{drv_path}' has no output '{output}'")
                r = s.query_realisation(keys[output])
                if r is None:
                    raise StoreError(f"output '{output}' of '{drv_path}' is not realised (build it first)")
                found.append(r)
    if as_json:
        typer.echo(json.dumps([json.loads(realisation_to_json(r)) for r in found], separators=(",", ":")))
        return
    for r in found:
        typer.echo(f"{r.id} {r.out_path}")
