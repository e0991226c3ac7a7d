"""A plain `storekit build …` command line read without typer (`storekit.cli._plain`).

`main` hands a `build` line here: `parse` turns a plain one into a `BuildRequest` for
`storekit.cli._build.run`, the function the typer command (`storekit.cli.build`) calls too, so what
the command does is defined once. No target is not plain either (typer says what is missing).
`tests/cli/test_cli_build_fast.py` checks that `OPTIONS` are the typer command's options.
"""

from __future__ import annotations

from storekit.cli import _plain
from storekit.cli._build import BuildRequest, run
from storekit.cli._plain import FLAG, INT0, INT1, SECONDS, TEXT, TEXTS

#: Every spelling of every option of `storekit build`: (BuildRequest field, kind).
OPTIONS: dict[str, tuple[str, str]] = {
    "--store": ("store", TEXT),
    "--jobs": ("jobs", INT0),
    "--max-jobs": ("jobs", INT0),
    "-j": ("jobs", INT0),
    "--builders": ("builders", TEXT),
    "--keep-going": ("keep_going", FLAG),
    "-k": ("keep_going", FLAG),
    "--keep-failed": ("keep_failed", FLAG),
    "-K": ("keep_failed", FLAG),
    "--sandbox-path": ("sandbox_path", TEXTS),
    "--substituters": ("substituters", TEXT),
    "--trusted-public-keys": ("trusted_public_keys", TEXT),
    "--no-check-sigs": ("no_check_sigs", FLAG),
    "--no-sandbox": ("no_sandbox", FLAG),
    "--timeout": ("timeout", SECONDS),
    "--cores": ("cores", INT1),
    "--print-build-logs": ("print_build_logs", FLAG),
    "-L": ("print_build_logs", FLAG),
    "--out-link": ("out_link", TEXT),
    "-o": ("out_link", TEXT),
    "--no-out-link": ("no_out_link", FLAG),
    "--dry-run": ("dry_run", FLAG),
    "--check": ("check", FLAG),
    "--quiet": ("quiet", FLAG),
    "-q": ("quiet", FLAG),
    "--json": ("as_json", FLAG),
}


def parse(args: list[str]) -> BuildRequest | None:
    """The request of a plain `build …` line (`args` after the program name), else None (typer's)."""
    if args[:1] != ["build"]:
        return None
    parsed = _plain.parse(args[1:], OPTIONS)
    if parsed is None or not parsed[1]:
        return None
    values, targets = parsed
    return BuildRequest(targets, **values)


def run_plain(request: BuildRequest) -> None:
    """`run`, ended as typer ends a command (`_plain.run_like_typer`)."""
    _plain.run_like_typer(lambda: run(request))
