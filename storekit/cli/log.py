"""`storekit log`: print the build log of a derivation, or of the derivation that built a path."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from storekit.cli._options import StoreOption, complete_store_path, local_store, resolve_path
from storekit.errors import StorekitError

NAME = "log"
HELP = "Print the build log of a derivation or of the path it built (like `nix log`)."


def command(
    path: Annotated[
        str,
        typer.Argument(
            help="A .drv path, or an output path (its deriver's log is shown).",
            autocompletion=complete_store_path,
            show_default=False,
        ),
    ],
    store: StoreOption = None,
) -> None:
    """Print a build log, as `nix log` does (logs are read plain or bzip2-compressed)."""
    from storekit.realise.logs import read_log

    with local_store(store) as s:
        wanted = resolve_path(s, path)
        drv = wanted
        if not wanted.is_derivation:
            info = s.query_path_info(wanted)
            derivers = [info.deriver] if info.deriver is not None else sorted(s.query_valid_derivers(wanted))
            if not derivers:
                raise StorekitError(f"path '{wanted}' has no deriver, so there is no build log for it")
            drv = derivers[0]
        data = read_log(s.spec.log_dir, drv)
    if data is None:
        raise StorekitError(f"build log of '{drv}' is not available")
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
