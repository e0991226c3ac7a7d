"""Structured attributes, pure: nlohmann::json's dump format and Nix 2.8's `.attrs.sh` rules at their edges.

The common cases are compared byte for byte with real Nix in
tests/interop/test_structured_attrs_interop.py; here the corners real Nix's evaluator cannot easily
produce (floats with many digits, numbers that overflow a C int, deep nesting).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from build_fixtures import goals, instantiate, open_store, write_recipe

from storekit.derivation.hashing import hash_placeholder
from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError
from storekit.realise import structured_attrs as sa
from storekit.realise.runner import BuildOptions, build_derivation


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (1.0, "1.0"),
        (-0.0, "-0.0"),
        (100.0, "100.0"),
        (1e15, "1e+15"),  # nlohmann leaves fixed notation at 10^15 (Python's repr only at 10^16)
        (999999999999999.0, "999999999999999.0"),
        (1e-4, "0.0001"),
        (1e-5, "1e-05"),  # two exponent digits at least, like printf
        (1.25e-7, "1.25e-07"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
        (0.1, "0.1"),
        (123.456, "123.456"),
    ],
)
def test_floats_like_nlohmann(value: float, text: str) -> None:
    assert sa.dump_float(value) == text


def test_dump_sorts_bytewise_and_escapes_like_nlohmann() -> None:
    doc = {"é": 1, "z": [True, False, None], "a": {"y": 'q"\\/\n\t\x01\x7fü'}, "B": [], "C": {}}
    text = sa.dump_json(doc)
    assert text == '{"B":[],"C":{},"a":{"y":"q\\"\\\\/\\n\\t\\u0001\x7fü"},"z":[true,false,null],"é":1}'
    assert json.loads(text) == doc


def test_dump_is_iterative() -> None:
    deep: list[object] = []
    for _ in range(50_000):
        deep = [deep]
    assert sa.dump_json(deep) == "[" * 50_001 + "]" * 50_001


def test_shell_values() -> None:
    doc: dict[str, object] = {
        "s": "it's",
        "n": None,
        "t": True,
        "f": False,
        "whole": 2.0,
        "half": 1.5,  # not integral as a C float: left out
        "big": 2**40,  # static_cast<int>: wraps modulo 2^32
        "wrap": 2**31,
        "huge": 1e20,  # out of int range: x86 gives INT_MIN
        "list": ["a", 1, None, True],
        "nested": [[1]],  # not representable: left out
        "obj": {"k'": "v", "b": False},
        "deepobj": {"k": {}},
        "empty": [],
        "bad-name": "x",
        "_ok9": 0,
    }
    assert sa.shell(doc) == (
        "declare _ok9=0\n"
        "declare big=0\n"
        "declare -a empty=()\n"
        "declare f=\n"
        "declare huge=-2147483648\n"
        "declare -a list=('a' 1 '' 1 )\n"
        "declare n=''\n"
        "declare -A obj=(['b']= ['k'\\''']='v' )\n"
        "declare s='it'\\''s'\n"
        "declare t=1\n"
        "declare whole=2\n"
        "declare wrap=-2147483648\n"
    )


def drv(json_text: str) -> Derivation:
    return Derivation(outputs={"out": DerivationOutput("/s/abc-x")}, env={"__json": json_text, "name": "x"})


def test_placeholders_become_output_paths_in_both_files() -> None:
    attrs = sa.parse(drv(json.dumps({"prefix": hash_placeholder("out") + "/bin"})), "x")
    outputs = {"out": "/s/abc-x"}
    files = sa.files(sa.prepare(attrs, outputs, {}), outputs)
    assert files[sa.JSON_FILE] == '{"outputs":{"out":"/s/abc-x"},"prefix":"/s/abc-x/bin"}'
    assert files[sa.SH_FILE] == "declare -A outputs=(['out']='/s/abc-x' )\ndeclare prefix='/s/abc-x/bin'\n"


@pytest.mark.parametrize("text", ["[1]", "{", '{"a": NaN}', '{"a": "\\ud800"}'])
def test_bad_json_refused(text: str) -> None:
    with pytest.raises(BuildError, match="__json"):
        sa.parse(drv(text), "x")


def test_strings_attr() -> None:
    assert sa.strings_attr({"a": ["x"]}, "a", "d") == ["x"]
    assert sa.strings_attr({}, "a", "d") is None
    with pytest.raises(BuildError, match="must be a list of strings"):
        sa.strings_attr({"a": "x"}, "a", "d")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
@pytest.mark.parametrize("sandbox", [True, False])
def test_builder_finds_the_files_through_the_env(tmp_path: Path, sandbox: bool) -> None:
    """NIX_ATTRS_*_FILE name the files where the builder runs, with the sandbox and without it."""
    script = (
        "bb=${inputs.bb}/busybox; "
        'out=$($bb sed \'s/.*"out":"\\([^"]*\\)".*/\\1/\' "$NIX_ATTRS_JSON_FILE"); '
        '$bb cp "$NIX_ATTRS_SH_FILE" $out; test -z "$greeting"'
    )
    recipe = write_recipe(tmp_path, "attrs", script, env={"__json": '{"greeting": "hi", "n": [1, 2]}'})
    with open_store(tmp_path / "s") as store:
        (goal,) = goals(store, instantiate(store, recipe))
        out = build_derivation(store, goal, BuildOptions(sandbox=sandbox)).outputs["out"]
        assert Path(store.real_path(out)).read_text() == (
            f"declare greeting='hi'\ndeclare -a n=(1 2 )\ndeclare -A outputs=(['out']='{out}' )\n"
        )
