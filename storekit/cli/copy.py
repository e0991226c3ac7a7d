"""`storekit copy`: copy closures between stores (local, overlay, `file://`, `http(s)://` and `s3://`
caches, and `ssh://` machines running `nix-store --serve`).

Like `nix copy`: the closure of each path is copied, paths the destination has are skipped, and paths
from a binary cache need a signature by a trusted key unless `--no-check-sigs`. Several `--from` (or
`--substituters "A B"`) form a substituter list: each path comes from the first that has it. The
config file's `trusted-public-keys` are trusted too, and its `secret-key-files` sign the copied paths
unless `--sign-key` names other keys. The config's `substituters` are not a default source: `copy`
reads from the store it is told to (or your store), never from the network behind the user's back.
"""

from __future__ import annotations

from typing import Annotated

import typer

from storekit.cli._copy import CopyRequest, run
from storekit.cli._options import FromOption, NoCheckSigsOption, PathsArgument, ToOption, TrustedKeysOption
from storekit.store.link import LinkMode

NAME = "copy"
HELP = "Copy closures between stores and binary caches (like `nix copy`)."


def copy(
    paths: PathsArgument,
    from_: FromOption = None,
    to: ToOption = None,
    substituters: Annotated[
        str | None,
        typer.Option(
            "--substituters", help="Space-separated source stores, in priority order (like --from)."
        ),
    ] = None,
    sign_key: Annotated[
        list[str] | None,
        typer.Option(
            "--sign-key",
            help="Secret key file: sign the copied paths (repeatable). "
            "Default: the config file's secret-key-files.",
        ),
    ] = None,
    trusted_public_keys: TrustedKeysOption = None,
    no_check_sigs: NoCheckSigsOption = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel transfers.")] = 4,
    link: Annotated[
        LinkMode,
        typer.Option("--link", help="Between local stores: auto (hard links), reflink, copy, stream."),
    ] = LinkMode.AUTO,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    relocate: Annotated[
        bool,
        typer.Option(
            "--relocate",
            help="When the store dirs differ, rewrite the closure for the destination's "
            "(content-addressed names, trusted without signatures).",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print {to, copied, alreadyValid, narBytes} (and relocated: {old: new}) as JSON."
        ),
    ] = False,
    create_bucket: Annotated[
        bool, typer.Option("--create-bucket", help="An s3:// destination whose bucket is missing: create it.")
    ] = False,
) -> None:
    """Copy the closures of PATHs from the source store(s) to the destination."""
    run(
        CopyRequest(
            paths,
            from_,
            to,
            substituters,
            sign_key,
            trusted_public_keys,
            no_check_sigs,
            jobs,
            link.value,
            quiet,
            relocate,
            as_json,
            create_bucket,
        )
    )
