"""`storekit copy` answered without typer (`storekit.cli._copy_line`) does what the typer command does.

A plain command line is parsed by `_copy_line.parse` and run by `_copy.run`, which the typer command
calls too; these check that the parser knows exactly the typer command's options (names, kinds,
defaults), that anything it is unsure of goes to typer, and that real copies through both paths
print the same bytes and exit with the same status.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from build_fixtures import REPO

from storekit.cli import _copy, _copy_line, _plain
from storekit.cli._app import load_command
from storekit.store.link import LinkMode
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for

#: `main` with the plain-line parser turned off: every line goes to typer.
TYPER = (
    "import sys; from storekit.cli import _copy_line, main; "
    "_copy_line.parse = lambda args: None; main(sys.argv[1:])"
)
STORE_DIR = "/opt/copyfast/store"


def _options() -> dict[str, Any]:
    params = load_command("copy").params
    return {p.name: p for p in params if p.name != "help"}


def test_the_plain_options_are_the_typer_commands() -> None:
    params = _options()
    spellings = {opt: name for name, p in params.items() for opt in (*p.opts, *p.secondary_opts)}
    spellings = {opt: name for opt, name in spellings.items() if opt.startswith("-")}
    assert {opt: dest for opt, (dest, _) in _copy_line.OPTIONS.items()} == spellings
    for opt, (dest, kind) in _copy_line.OPTIONS.items():
        p = params[dest]
        assert (kind == _plain.FLAG) == bool(p.is_flag), opt
        assert (kind == _plain.TEXTS) == bool(p.multiple), opt
        if kind == _plain.INT1:
            assert p.type.min == 1 and p.type.max is None and p.type.__class__.__name__ == "IntRange", opt
        elif dest == "link":
            assert list(p.type.choices) == list(_copy_line.LINK_MODES) == [m.value for m in LinkMode]
        elif kind != _plain.FLAG:
            assert p.type.name == "str", opt  # typer's name for click's STRING


def test_the_request_has_the_typer_commands_names_and_defaults() -> None:
    params = _options()
    fields = inspect.signature(_copy.CopyRequest).parameters
    assert list(fields) == list(params) == list(_copy.FIELDS)
    for name, f in fields.items():
        if f.default is not inspect.Parameter.empty:
            default = params[name].default
            assert (default.value if isinstance(default, LinkMode) else default) == f.default, name
    assert params["paths"].required and fields["paths"].default is inspect.Parameter.empty


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (["/s/p"], {}),
        (["/s/p", "/s/q", "--from", "file:///c", "--from=http://h", "--to", "/d"],
         {"from_": ["file:///c", "http://h"], "to": "/d"}),
        (["-j2", "/s/p", "--jobs", "3", "--link", "reflink", "-q", "--json"],
         {"jobs": 3, "link": "reflink", "quiet": True, "as_json": True}),
        (["/s/p", "--sign-key", "a", "--sign-key=b", "--no-check-sigs", "--relocate", "--create-bucket"],
         {"sign_key": ["a", "b"], "no_check_sigs": True, "relocate": True, "create_bucket": True}),
        (["/s/p", "--substituters", "", "--trusted-public-keys=k:AAAA"],
         {"substituters": "", "trusted_public_keys": "k:AAAA"}),
    ],
)  # fmt: skip
def test_a_plain_line_is_parsed(line: list[str], expected: dict[str, Any]) -> None:
    request = _copy_line.parse(["copy", *line])
    assert request is not None
    paths = [a for a in line if a.startswith("/s/")]
    assert request == _copy.CopyRequest(paths, **expected)


@pytest.mark.parametrize(
    "line",
    [
        [],
        ["--help"],
        ["/s/p", "--bogus"],
        ["/s/p", "-j", "0"],
        ["/s/p", "-j", "-1"],
        ["/s/p", "--link", "symlink"],
        ["/s/p", "--to"],
        ["/s/p", "-qj2"],
        ["--", "/s/p"],
        ["--to", "/d"],
    ],
)
def test_anything_else_goes_to_typer(line: list[str]) -> None:
    assert _copy_line.parse(["copy", *line]) is None


def _run(how: str, args: list[str], home: Path) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "storekit"] if how == "plain" else [sys.executable, "-c", TYPER]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    env.pop("STOREKIT_STORE", None)
    return subprocess.run([*argv, "copy", *args], env=env, capture_output=True, check=False)


def test_same_bytes_and_status_as_typer(tmp_path: Path) -> None:
    src_spec = local_spec_for(
        STORE_DIR, state_dir=str(tmp_path / "src" / "var"), real_dir=str(tmp_path / "src" / "store")
    )
    with LocalStore(src_spec) as src:
        base = src.add_text("base", b"base\n", [])
        top = src.add_text("top", b"top\n", [base])
    runs: dict[str, list[tuple[int, bytes, bytes]]] = {}
    for how in ("plain", "typer"):
        root = tmp_path / how
        cache = f"file://{root / 'cache'}?store={STORE_DIR}"
        dst = f"local?store={STORE_DIR}&state={root / 'dst' / 'var'}&real={root / 'dst' / 'store'}"
        lines = [
            ["--from", str(src_spec), "--to", cache, str(top), "-j", "2"],
            ["--from", str(src_spec), "--to", cache, str(top), "--json"],
            ["--from", cache, "--to", dst, str(base), "-q"],
            ["--from", cache, "--to", dst, str(top), "--link", "stream", "--json"],
            ["--from", cache, "--to", dst, STORE_DIR + "/" + "0" * 32 + "-missing", "-q"],
            ["--from", cache, "--to", "s3://b", str(top), "--create-bucket", "--to", dst],
        ]
        runs[how] = []
        for line in lines:
            assert _copy_line.parse(["copy", *line]) is not None
            done = _run(how, line, root / "home")
            out, err = (text.replace(str(root).encode(), b"ROOT") for text in (done.stdout, done.stderr))
            runs[how].append((done.returncode, out, err))
    for i, (plain, typer) in enumerate(zip(runs["plain"], runs["typer"], strict=True)):
        assert plain == typer, f"line {i}"
    statuses = [status for status, _, _ in runs["plain"]]
    assert statuses == [0, 0, 0, 0, 1, 1]  # the lines above did what they should
    assert runs["plain"][0][2].startswith(b"copied 2 paths")
    assert json.loads(runs["plain"][3][1])["copied"] == [str(top)]
    assert runs["plain"][4][2].startswith(b"error: ") and runs["plain"][5][2].startswith(b"error: ")
