"""`storekit build`: build derivations in the sandbox into a store under any prefix (like `nix-build`).

Targets are `.drv` paths valid in the store (for example ones real Nix instantiated for that store dir
and `storekit copy` brought over), `DRV!out,dev` for chosen outputs, or storekit recipes (`*.toml`),
which are instantiated first. Missing outputs are substituted when `--substituters` (default: the
config file's) have them with a signature by a trusted key (`--trusted-public-keys` and the config
file's), built otherwise; the output paths are printed, one per line (`--json`: as `nix build --json`),
and `./result` symlinks to them are made as indirect GC roots (`--out-link`, `--no-out-link`), as
`nix-build` does, so that `storekit store gc` keeps what was just built.
"""

from __future__ import annotations

from typing import Annotated

import typer

from storekit.cli import _build
from storekit.cli._options import KeepFailedOption, StoreOption, TrustedKeysOption, complete_store_path

NAME = "build"
HELP = "Build derivations (.drv or recipe .toml) in a sandbox; print the output paths."


def command(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Derivations: a .drv path, DRV!OUT[,OUT…], or a recipe .toml.",
            autocompletion=complete_store_path,
            show_default=False,
        ),
    ],
    store: StoreOption = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "--max-jobs",
            "-j",
            min=0,
            help="Builds to run in parallel here (0: none, only on --builders).",
        ),
    ] = 1,
    builders: Annotated[
        str | None,
        typer.Option(
            "--builders",
            help="Remote machines in Nix's syntax: 'ssh://HOST SYSTEMS KEY JOBS SPEED FEATURES "
            "MANDATORY HOSTKEY', ';' or newline between machines, @FILE for a machines file.",
        ),
    ] = None,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", "-k", help="Keep building what does not depend on a failure.")
    ] = False,
    keep_failed: KeepFailedOption = False,
    sandbox_path: Annotated[
        list[str] | None,
        typer.Option(
            "--sandbox-path", help="PATH[=HOSTPATH][?]: a host path visible (read-only) to builders."
        ),
    ] = None,
    substituters: Annotated[
        str | None,
        typer.Option(
            "--substituters",
            help="Space-separated stores to substitute from. Default: the config file's substituters.",
        ),
    ] = None,
    trusted_public_keys: TrustedKeysOption = None,
    no_check_sigs: Annotated[
        bool, typer.Option("--no-check-sigs", help="Substitute paths without a trusted signature.")
    ] = False,
    no_sandbox: Annotated[
        bool, typer.Option("--no-sandbox", help="Run builders on the host (needs store dir = real dir).")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Kill a build after this many seconds.")
    ] = None,
    cores: Annotated[
        int | None, typer.Option("--cores", min=1, help="NIX_BUILD_CORES (default: all CPUs).")
    ] = None,
    print_build_logs: Annotated[
        bool, typer.Option("--print-build-logs", "-L", help="Show build logs on stderr as they come.")
    ] = False,
    out_link: Annotated[
        str,
        typer.Option(
            "--out-link",
            "-o",
            metavar="PATH",
            help="The symlink to each output, an indirect GC root: PATH, PATH-dev for output dev, "
            "PATH-2 for the second target (like nix-build).",
        ),
    ] = "result",
    no_out_link: Annotated[
        bool,
        typer.Option("--no-out-link", help="Make no symlink: the outputs are garbage until rooted."),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be done.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Rebuild built derivations and compare (nix-build --check); change nothing."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress line.")] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print `nix build --json`'s [{drvPath, outputs}] for the targets built."),
    ] = False,
) -> None:
    """Build derivations and their missing inputs; print their output paths.

    What it does is `storekit.cli._build.run`'s, which `main` also calls for a plain command line
    without importing typer: this declares the options and their help.
    """
    _build.run(
        _build.BuildRequest(
            targets=targets,
            store=store,
            jobs=jobs,
            builders=builders,
            keep_going=keep_going,
            keep_failed=keep_failed,
            sandbox_path=sandbox_path,
            substituters=substituters,
            trusted_public_keys=trusted_public_keys,
            no_check_sigs=no_check_sigs,
            no_sandbox=no_sandbox,
            timeout=timeout,
            cores=cores,
            print_build_logs=print_build_logs,
            out_link=out_link,
            no_out_link=no_out_link,
            dry_run=dry_run,
            check=check,
            quiet=quiet,
            as_json=as_json,
        )
    )
