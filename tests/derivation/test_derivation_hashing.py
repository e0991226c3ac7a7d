"""hashDerivationModulo, output paths, `.drv` paths and instantiation, against real Nix's golden drvs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storekit.derivation import Derivation, DerivationOutput
from storekit.derivation.aterm import parse, print_aterm
from storekit.derivation.hashing import (
    Kind,
    check,
    derivation_kind,
    drv_path,
    hash_derivation_modulo,
    hash_placeholder,
    instantiate,
    output_paths,
)
from storekit.errors import InvalidDerivation, InvalidStorePath
from storekit.hashing import Hash
from storekit.storepath import StoreDir

DATA = Path(__file__).parent.parent / "data" / "derivations"
STORE = StoreDir("/opt/store")
ROOTS: dict[str, str] = json.loads((DATA / "roots.json").read_text())


def lookup(path: str) -> Derivation:
    return parse((DATA / "store" / Path(path).name).read_bytes().decode("utf-8", "surrogateescape"))


def case(name: str) -> tuple[str, Derivation]:
    return ROOTS[name], lookup(ROOTS[name])


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_check_passes_on_every_nix_drv(name: str) -> None:
    path, drv = case(name)
    assert check(path, drv, STORE, lookup) == []


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_drv_path_is_nix_drv_path(name: str) -> None:
    path, drv = case(name)
    assert str(drv_path(drv, STORE)) == path


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_output_paths_are_nix_output_paths(name: str) -> None:
    _, drv = case(name)
    expected = {o: out.path for o, out in drv.outputs.items() if out.path}
    assert {o: str(p) for o, p in output_paths(drv, STORE, lookup).items()} == expected


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_instantiate_reproduces_nix(name: str) -> None:
    """Blank what the `derivation` primop fills in, then fill it in again."""
    path, drv = case(name)
    template = drv.replace(
        outputs={o: out.with_path("") for o, out in drv.outputs.items()},
        env={k: v for k, v in drv.env.items() if k not in drv.outputs},
    )
    got_path, got = instantiate(template, STORE, lookup)
    assert print_aterm(got) == print_aterm(drv)
    assert str(got_path) == path


def test_kinds() -> None:
    assert derivation_kind(case("multi")[1]) is Kind.INPUT_ADDRESSED
    assert derivation_kind(case("fodSha1")[1]) is Kind.FIXED
    assert derivation_kind(case("floating")[1]) is Kind.FLOATING
    assert derivation_kind(case("impure")[1]) is Kind.IMPURE
    assert derivation_kind(case("deferred")[1]) is Kind.DEFERRED


def test_fixed_output_hash_modulo_is_fixed_fingerprint() -> None:
    _, drv = case("fodRecSha1")
    out = drv.outputs["out"]
    expected = Hash.of(f"fixed:out:r:sha1:{out.hash}:{out.path}".encode())
    assert hash_derivation_modulo(drv, STORE, lookup) == expected


def test_twin_fixed_outputs_merge_in_the_consumer() -> None:
    _, twins = case("twins")
    a, b = (lookup(p) for p in twins.input_drvs)
    assert a != b
    assert hash_derivation_modulo(a, STORE, lookup) == hash_derivation_modulo(b, STORE, lookup)
    hexes = {p: hash_derivation_modulo(lookup(p), STORE, lookup).base16 for p in twins.input_drvs}
    masked = print_aterm(twins, mask_outputs=True, input_drv_hashes=hexes)
    h = next(iter(hexes.values()))
    assert f'[("{h}",["out"])]' in masked
    assert Hash.of(masked.encode()) == hash_derivation_modulo(twins, STORE, lookup)


def test_chain_uses_unmasked_hashes_of_inputs() -> None:
    _, chain2 = case("chain2")
    (p1,) = chain2.input_drvs
    inner = hash_derivation_modulo(lookup(p1), STORE, lookup, mask_outputs=False)
    masked = print_aterm(chain2, mask_outputs=True, input_drv_hashes={p1: inner.base16})
    assert Hash.of(masked.encode()) == hash_derivation_modulo(chain2, STORE, lookup)


def test_lookups_are_memoised_per_call() -> None:
    _, diamond = case("diamond")
    seen: list[str] = []

    def counting(path: str) -> Derivation:
        seen.append(path)
        return lookup(path)

    output_paths(diamond, STORE, counting)
    assert len(seen) == len(set(seen)) == 3  # left, right, multi (multi reached twice)


def test_check_names_a_tampered_output_and_the_drv_path() -> None:
    path, drv = case("multi")
    doc = DerivationOutput("/opt/store/" + "0" * 32 + "-multi-doc")
    bad = drv.replace(outputs={**drv.outputs, "doc": doc})
    problems = check(path, bad, STORE, lookup)
    assert any(p.startswith("output 'doc' is '/opt/store/0000") for p in problems)
    assert any("own path should be" in p for p in problems)
    assert not any("'out'" in p or "'dev'" in p for p in problems)


def test_check_names_a_tampered_env_var() -> None:
    path, drv = case("fodFlatSha256")
    bad = drv.replace(env={**drv.env, "out": "/opt/store/elsewhere"})
    problems = check(path, bad, STORE, lookup)
    assert problems[0].startswith("environment variable 'out' is '/opt/store/elsewhere', should be")


def test_check_refuses_a_drv_outside_the_store_dir() -> None:
    path, drv = case("simple")
    with pytest.raises(InvalidStorePath):
        check(path, drv, StoreDir("/nix/store"), lookup)


def test_hash_placeholder_matches_nix() -> None:
    _, drv = case("floating")
    assert drv.env["out"] == hash_placeholder("out")
    assert drv.env["lib"] == hash_placeholder("lib")


def test_invalid_derivations() -> None:
    mixed = Derivation({"out": DerivationOutput("/opt/store/x"), "b": DerivationOutput("", "sha256", "")})
    with pytest.raises(InvalidDerivation, match="mixes output types"):
        derivation_kind(mixed)
    two_fixed = Derivation(
        {"out": DerivationOutput("/p", "sha256", "ab" * 32), "x": DerivationOutput("/q", "sha256", "ab" * 32)}
    )
    with pytest.raises(InvalidDerivation, match="exactly one output, named 'out'"):
        derivation_kind(two_fixed)
    nameless = Derivation({"out": DerivationOutput()})
    with pytest.raises(InvalidDerivation, match="no name"):
        drv_path(nameless, STORE)
    _, chain2 = case("chain2")
    wrong_output = chain2.replace(input_drvs={p: ("nope",) for p in chain2.input_drvs})
    with pytest.raises(InvalidDerivation, match="uses output 'nope'"):
        hash_derivation_modulo(wrong_output, STORE, lookup)
