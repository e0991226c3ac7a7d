"""Resolving derivations with content-addressed inputs, against the `.drv` files real Nix wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storekit.derivation.aterm import parse
from storekit.derivation.hashing import Kind, ModuloHasher, derivation_kind
from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError
from storekit.realise.resolve import downstream_placeholder, needs_resolution, resolve
from storekit.storepath import StoreDir

DATA = Path(__file__).parent.parent / "data" / "derivations"
STORE = StoreDir("/opt/store")
ROOTS: dict[str, str] = json.loads((DATA / "roots.json").read_text())


def lookup(path: str) -> Derivation:
    return parse((DATA / "store" / Path(path).name).read_bytes().decode("utf-8", "surrogateescape"))


def test_downstream_placeholder_is_the_one_nix_wrote() -> None:
    """`deferred` uses `floating.lib`: Nix put the placeholder of that output in its env."""
    deferred = lookup(ROOTS["deferred"])
    floating = STORE.parse_path(ROOTS["floating"])
    assert deferred.env["lib"] == downstream_placeholder(floating, "lib")
    assert downstream_placeholder(floating, "out") != downstream_placeholder(floating, "lib")


def test_resolve_a_deferred_derivation() -> None:
    deferred = lookup(ROOTS["deferred"])
    lib = STORE.parse_path("/opt/store/" + "1" * 32 + "-floating-lib")
    resolved = resolve(deferred, {(ROOTS["floating"], "lib"): lib}, ModuloHasher(STORE, lookup))
    assert resolved.input_drvs == {}
    assert resolved.input_srcs == (str(lib),)
    assert resolved.env["lib"] == str(lib)
    # the deferred output got the input-addressed path of the resolved derivation, in the env too
    out = resolved.outputs["out"]
    assert out.is_input_addressed and resolved.env["out"] == out.path
    blank = resolved.replace(outputs={"out": DerivationOutput()}, env={**resolved.env, "out": ""})
    h = ModuloHasher(STORE, lookup).hash(blank, "deferred", mask_outputs=True).hashes["out"]
    assert out.path == str(STORE.make_output_path("out", h, "deferred"))
    assert derivation_kind(resolved) is Kind.INPUT_ADDRESSED


def test_resolve_keeps_floating_outputs_floating() -> None:
    floating = lookup(ROOTS["floating"])
    user = Derivation(
        outputs={"out": DerivationOutput.floating(floating.outputs["out"].method, "sha256")},
        input_drvs={ROOTS["floating"]: ("out",)},
        system="x86_64-linux",
        builder="/bin/sh",
        args=("-c", f"cp -r {downstream_placeholder(STORE.parse_path(ROOTS['floating']), 'out')} $out"),
        env={"name": "user", "out": "/placeholder"},
    )
    path = STORE.parse_path("/opt/store/" + "2" * 32 + "-floating")
    resolved = resolve(user, {(ROOTS["floating"], "out"): path}, ModuloHasher(STORE, lookup))
    assert resolved.args == ("-c", f"cp -r {path} $out")
    assert resolved.outputs == user.outputs
    assert needs_resolution(resolved)


def test_resolve_needs_every_used_output() -> None:
    with pytest.raises(BuildError, match=r"output 'lib' of input .* is not realised"):
        resolve(lookup(ROOTS["deferred"]), {}, ModuloHasher(STORE, lookup))


def test_which_derivations_need_resolution() -> None:
    assert needs_resolution(lookup(ROOTS["floating"]))
    assert needs_resolution(lookup(ROOTS["deferred"]))
    assert not needs_resolution(lookup(ROOTS["simple"]))
    assert not needs_resolution(lookup(ROOTS["fodRecSha256"]))
    with pytest.raises(BuildError, match=r"impure derivation .* experimental"):
        needs_resolution(lookup(ROOTS["impure"]))
