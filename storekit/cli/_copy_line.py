"""A plain `storekit copy …` command line read without typer (`storekit.cli._plain`).

`main` hands a `copy` line here: `parse` turns a plain one into a `CopyRequest` for
`storekit.cli._copy.run`, which the typer command (`storekit.cli.copy`) calls too. No path, or a
`--link` that is not one of the modes, is not plain either (typer says what is wrong).
`tests/cli/test_cli_copy_fast.py` checks that `OPTIONS` are the typer command's options.
"""

from __future__ import annotations

from storekit.cli import _plain
from storekit.cli._copy import CopyRequest, run
from storekit.cli._plain import FLAG, INT1, TEXT, TEXTS

#: Every spelling of every option of `storekit copy`: (CopyRequest field, kind).
OPTIONS: dict[str, tuple[str, str]] = {
    "--from": ("from_", TEXTS),
    "--to": ("to", TEXT),
    "--substituters": ("substituters", TEXT),
    "--sign-key": ("sign_key", TEXTS),
    "--trusted-public-keys": ("trusted_public_keys", TEXT),
    "--no-check-sigs": ("no_check_sigs", FLAG),
    "--jobs": ("jobs", INT1),
    "-j": ("jobs", INT1),
    "--link": ("link", TEXT),
    "--quiet": ("quiet", FLAG),
    "-q": ("quiet", FLAG),
    "--relocate": ("relocate", FLAG),
    "--json": ("as_json", FLAG),
    "--create-bucket": ("create_bucket", FLAG),
}

#: `--link`'s values (`storekit.store.link.LinkMode`'s, checked by the test).
LINK_MODES = ("auto", "reflink", "copy", "stream")


def parse(args: list[str]) -> CopyRequest | None:
    """The request of a plain `copy …` line (`args` after the program name), else None (typer's)."""
    if args[:1] != ["copy"]:
        return None
    parsed = _plain.parse(args[1:], OPTIONS)
    if parsed is None or not parsed[1] or parsed[0].get("link", "auto") not in LINK_MODES:
        return None
    values, paths = parsed
    return CopyRequest(paths, **values)


def run_plain(request: CopyRequest) -> None:
    """`run`, ended as typer ends a command (`_plain.run_like_typer`)."""
    _plain.run_like_typer(lambda: run(request))
