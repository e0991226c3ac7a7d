"""The hand-written value classes (`storekit.frozen`) behave as the frozen dataclasses they replace:
equal and hashed by their fields, ordered where they were, refusing assignment, with a dataclass's
repr, and copied and pickled through `__init__`."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from storekit.config import Config
from storekit.nixversion import NixRules, NixVersion
from storekit.store.specs import FileCacheSpec, LocalStoreSpec, parse_store_spec
from storekit.storepath import FileIngestionMethod, NameRule, StoreDir, StorePath

HASH = "0" * 31 + "1"


def test_store_paths_are_values() -> None:
    d = StoreDir("/opt/store")
    a, b = StorePath(d, HASH, "a"), StorePath("/opt/store", HASH, "b")  # type: ignore[arg-type]
    assert b.store_dir == d and isinstance(b.store_dir, StoreDir)
    assert a == StorePath(StoreDir("/opt/store"), HASH, "a") and hash(a) == hash(StorePath(d, HASH, "a"))
    assert a != b and a < b and sorted([b, a]) == [a, b] and max(a, b) is b
    assert StorePath(StoreDir("/a"), HASH, "z") < StorePath(StoreDir("/b"), HASH, "a")
    assert a != "x" and (a == object()) is False
    assert repr(a) == f"StorePath(store_dir=StoreDir(path='/opt/store', name_rule={NameRule.NIX_2_8!r}), " + (
        f"hash_part='{HASH}', name='a')"
    )
    assert copy.copy(a) == a and copy.deepcopy(a) == a and pickle.loads(pickle.dumps(a)) == a
    match a:
        case StorePath(store_dir, hash_part, name):
            assert (store_dir, hash_part, name) == (d, HASH, "a")
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'name'"):
        a.name = "b"
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'hash_part'"):
        del a.hash_part
    with pytest.raises(TypeError):
        _ = a < d  # type: ignore[operator]


def test_a_store_dirs_name_rule_is_not_its_identity() -> None:
    strict = StoreDir("/opt/store", NameRule.STRICT)
    assert strict == StoreDir("/opt/store") and hash(strict) == hash(StoreDir("/opt/store"))
    assert StoreDir(strict) == strict and StoreDir(strict).name_rule is NameRule.NIX_2_8  # type: ignore[arg-type]
    assert StoreDir("/a") < StoreDir("/b") <= StoreDir("/b")
    assert pickle.loads(pickle.dumps(strict)).name_rule is NameRule.STRICT


def test_versions_rules_specs_and_config_are_values() -> None:
    assert NixVersion(2, 8) < NixVersion(2, 21) and NixVersion.parse("nix-2.28.3") == NixVersion(2, 28)
    assert {NixRules(NixVersion(2, 8)), NixRules(NixVersion(2, 8))} == {NixRules(NixVersion(2, 8))}
    spec = parse_store_spec("local?store=/opt/store&state=/s&log=/l")
    assert spec == LocalStoreSpec("/opt/store", "/s", "/l", "/opt/store")
    assert (
        repr(spec)
        == "LocalStoreSpec(store_dir='/opt/store', state_dir='/s', log_dir='/l', real_dir='/opt/store')"
    )
    assert FileCacheSpec("/c", "/nix/store") == FileCacheSpec("/c", "/nix/store", "xz", ())
    assert Config(substituters=("a",)) != Config() and Config().file is None
    for value in (spec, Config(store="x"), NixRules()):
        assert copy.copy(value) == value and hash(value) == hash(pickle.loads(pickle.dumps(value)))
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.store_dir = "/x"  # type: ignore[union-attr]


def test_name_rules_and_ingestion_methods_are_constants() -> None:
    """`storekit.frozen.Constant`: what the enums they were gave (name, value, repr, str, identity)."""
    rule = NameRule.STRICT
    assert (rule.name, rule.value) == ("STRICT", "strict") and rule is not NameRule.NIX_2_21
    assert repr(rule) == "<NameRule.STRICT: 'strict'>" and str(rule) == "NameRule.STRICT"
    assert copy.copy(rule) is rule and copy.deepcopy(rule) is rule
    assert pickle.loads(pickle.dumps(rule)) is rule
    assert {FileIngestionMethod.FLAT.value, FileIngestionMethod.RECURSIVE.value} == {"", "r:"}
    assert pickle.loads(pickle.dumps(StoreDir("/s", NameRule.NIX_2_21))).name_rule is NameRule.NIX_2_21
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.value = "x"  # type: ignore[misc]
