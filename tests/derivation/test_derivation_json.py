"""The JSON of `nix show-derivation` (Nix 2.8): byte-identical rendering and the way back to ATerm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storekit.derivation import Derivation, DerivationOutput
from storekit.derivation.aterm import parse, print_aterm
from storekit.derivation.json import dumps, from_json, from_json_all, loads, to_json
from storekit.errors import DerivationParseError

DATA = Path(__file__).parent.parent / "data" / "derivations"
DRV_FILES = sorted((DATA / "store").glob("*.drv"))
STORE_DIR = "/opt/store"


def read(file: Path) -> str:
    return file.read_bytes().decode("utf-8", "surrogateescape")


def nix_show() -> str:
    """What real Nix printed for `nix show-derivation -r` over every golden derivation."""
    return read(DATA / "show.json")


def test_dumps_of_all_golden_drvs_is_what_nix_printed() -> None:
    obj: dict[str, Any] = {}
    for file in DRV_FILES:
        obj.update(to_json(f"{STORE_DIR}/{file.name}", parse(read(file))))
    assert dumps(obj) + "\n" == nix_show()


@pytest.mark.parametrize("file", DRV_FILES, ids=lambda f: f.name)
def test_json_back_to_the_exact_drv(file: Path) -> None:
    entries = dict(from_json_all(loads(nix_show())))
    drv = entries[f"{STORE_DIR}/{file.name}"]
    assert print_aterm(drv) == read(file)
    assert drv == parse(read(file))


def test_output_kinds_in_json() -> None:
    drvs = dict(from_json_all(loads(nix_show())))
    by_name = {d.name: d for d in drvs.values()}
    assert by_name["fod-rec"].outputs["out"].hash_algo == "r:sha256"
    assert by_name["floating"].outputs["lib"] == DerivationOutput("", "r:sha256", "")
    assert by_name["impure"].outputs["out"] == DerivationOutput("", "r:sha256", "impure")
    assert by_name["deferred"].outputs["out"] == DerivationOutput()


def test_dumps_escapes_like_nix_json_writer() -> None:
    s = 'q" b\\ n\n r\r t\t bs\b ff\f x01\x01 del\x7f é \udcff'
    assert dumps(s) == '"q\\" b\\\\ n\\n r\\r t\\t bs\\u0008 ff\\u000c x01\\u0001 del\x7f é \udcff"'
    assert dumps({"a": [], "b": {}, "c": True}) == '{\n  "a": [],\n  "b": {},\n  "c": true\n}'


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_dumps_then_loads_is_identity(s: str) -> None:
    assert json.loads(dumps({"k": [s]})) == {"k": [s]}


def test_from_json_single_and_several() -> None:
    drv = Derivation({"out": DerivationOutput("/s/h-x")}, system="s", builder="/b", env={"a": "1"})
    assert from_json(to_json("/s/h-x.drv", drv)) == ("/s/h-x.drv", drv)
    two = {**to_json("/s/a.drv", drv), **to_json("/s/b.drv", drv)}
    with pytest.raises(DerivationParseError, match="exactly one derivation, found 2"):
        from_json(two)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("env"), "missing keys \\['env'\\]"),
        (lambda d: d.update(args="x"), "args: expected a list of strings"),
        (lambda d: d["env"].update(n=1), "env.n: expected a string"),
        (lambda d: d.update(outputs={}), "at least one output"),
        (lambda d: d["outputs"]["out"].update(hashAlgo="sha3"), "unknown hash algorithm 'sha3'"),
        (lambda d: d["outputs"]["out"].update(hashAlgo="sha256", hash="zz"), "out.hash"),
        (lambda d: d["outputs"]["out"].update(colour="red"), "unknown keys"),
    ],
)
def test_from_json_errors_name_the_place(mutate: Any, message: str) -> None:
    drv = Derivation({"out": DerivationOutput("/s/h-x")}, system="s", builder="/b", env={"a": "1"})
    obj = to_json("/s/h-x.drv", drv)
    mutate(obj["/s/h-x.drv"])
    with pytest.raises(DerivationParseError, match=message):
        from_json(obj)


def test_loads_syntax_error_has_a_caret() -> None:
    with pytest.raises(DerivationParseError) as info:
        loads('{"a": [1,, 2]}')
    assert info.value.span == (9, 10)
    assert "~" in str(info.value)
