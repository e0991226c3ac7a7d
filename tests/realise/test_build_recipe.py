"""Recipes (pure part): parsing, checking, interpolation. Their .drv output is checked against
`nix-instantiate` in tests/interop/test_build_interop.py."""

from __future__ import annotations

import pytest

from storekit.errors import ConfigError
from storekit.hashing import Hash
from storekit.realise.recipe import Resolved, parse_recipe, recipe_derivation
from storekit.storepath import StoreDir

SD = StoreDir("/opt/store")
BB = SD.make_text_path("bb", Hash.of(b"bb"))
DEP = SD.make_text_path("dep.drv", Hash.of(b"dep"))
DEP_OUT = str(SD.make_output_path("out", Hash.of(b"d"), "dep"))
DEP_DEV = str(SD.make_output_path("dev", Hash.of(b"d"), "dep"))


def derive(text: str):  # type: ignore[no-untyped-def]
    recipe = parse_recipe(text, "r.toml")
    resolved = {"bb": Resolved(BB), "dep": Resolved(DEP, {"out": DEP_OUT, "dev": DEP_DEV})}
    return recipe_derivation(recipe, {k: resolved[k] for k in recipe.inputs}, "x86_64-linux")


HEAD = 'name = "t"\nbuilder = "${inputs.bb}/busybox"\n'
INPUTS = '[inputs]\nbb = "/opt/store/x"\ndep = { drv = "/opt/store/y.drv" }\n'


def test_interpolation_and_inputs() -> None:
    d = derive(HEAD + 'args = ["${inputs.dep.dev}", "$out ${out}"]\n' + INPUTS)
    assert d.builder == f"{BB}/busybox"
    assert d.args == (DEP_DEV, "$out ${out}")  # shell variables are not storekit's business
    assert d.input_srcs == (str(BB),)
    assert dict(d.input_drvs) == {str(DEP): ("dev",)}  # only the output used, as Nix's string context
    assert d.env["builder"] == d.builder and d.env["system"] == "x86_64-linux" and "outputs" not in d.env


def test_declared_outputs_of_an_input_are_all_used() -> None:
    text = (
        HEAD + '[inputs]\nbb = "/opt/store/x"\ndep = { drv = "/opt/store/y.drv", outputs = ["out", "dev"] }\n'
    )
    assert dict(derive(text).input_drvs) == {str(DEP): ("dev", "out")}


def test_fixed_output_env_as_nix_writes_it() -> None:
    sri = Hash.of(b"x").sri
    d = derive(HEAD + f'[fixed-output]\nhash = "{sri}"\nmode = "recursive"\n' + INPUTS)
    assert d.env["outputHash"] == sri and d.env["outputHashMode"] == "recursive"
    assert "outputHashAlgo" not in d.env
    assert d.outputs["out"].hash_algo == "r:sha256" and d.outputs["out"].hash == Hash.of(b"x").base16


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('builder = "x"\n', "name"),
        (HEAD + "args = 3\n", "args"),
        (HEAD + "bogus = 1\n", "bogus"),
        (HEAD + '[env]\nname = "x"\n', "env.name"),
        (HEAD + '[inputs]\nx = { path = "a", drv = "b" }\n', "inputs.x"),
        (HEAD + '[fixed-output]\nhash = "sha256-AAAA"\nmode = "deep"\n', "fixed-output.mode"),
        (HEAD + 'outputs = ["out", "dev"]\n[fixed-output]\nhash = "sha256-AAAA"\n', "outputs"),
    ],
)
def test_bad_recipes_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        derive(text + (INPUTS if "[inputs]" not in text and 'builder = "${' in text else ""))
    assert (e.value.file, e.value.key) == ("r.toml", key)


def test_unknown_input_reference() -> None:
    with pytest.raises(ConfigError, match="names no input"):
        derive(HEAD + 'args = ["${inputs.nope}"]\n' + INPUTS)
    with pytest.raises(ConfigError, match="no output 'lib'"):
        derive(HEAD + 'args = ["${inputs.dep.lib}"]\n' + INPUTS)
