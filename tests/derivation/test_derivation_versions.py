"""Derivation JSON of every Nix version, checked against NixOS/nix's own golden files (Nix 2.36 pre-release).

Each golden `.drv`/`.json` pair must round-trip byte for byte in both directions; storekit's output of
format 4 must validate against Nix's JSON schema; every format must read back to the same `.drv`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nixgolden import ABSENT, golden_files, golden_id, read, store_data, validator

from storekit.derivation import jsonform
from storekit.derivation.aterm import parse, print_aterm
from storekit.derivation.hashing import ModuloHasher, drv_path, fixed_output_path
from storekit.errors import DerivationParseError
from storekit.storepath import StoreDir

REPO = Path(__file__).parent.parent.parent
NIX_STORE = StoreDir("/nix/store")
PAIRS = [p for p in golden_files("derivation", "**/*.json") if p == ABSENT or p.with_suffix(".drv").exists()]


def storekit(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args], input=input, capture_output=True, env=env, check=False
    )


def text(path: Path) -> str:
    return read(path).decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("golden", PAIRS, ids=golden_id)
def test_golden_drv_gives_golden_json(golden: Path) -> None:
    expected = text(golden)
    drv = parse(text(golden.with_suffix(".drv")))
    shown = jsonform.to_json(drv, json.loads(expected)["name"], NIX_STORE, 4)
    assert jsonform.render(shown, 4) == expected


@pytest.mark.parametrize("golden", PAIRS, ids=golden_id)
def test_golden_json_gives_golden_drv(golden: Path) -> None:
    (entry,) = jsonform.from_json_any(json.loads(text(golden)), NIX_STORE)
    assert entry.path is None and entry.name == json.loads(text(golden))["name"]
    assert print_aterm(entry.drv) == text(golden.with_suffix(".drv"))


@pytest.mark.parametrize("golden", PAIRS, ids=golden_id)
@pytest.mark.parametrize("version", jsonform.JSON_FORMATS)
def test_every_format_reads_back_to_the_same_drv(golden: Path, version: int) -> None:
    drv_text = text(golden.with_suffix(".drv"))
    drv = parse(drv_text)
    name = json.loads(text(golden))["name"]
    path = str(drv_path(drv, NIX_STORE, name=name))
    if version == 0 and drv.dynamic_outputs:
        with pytest.raises(DerivationParseError, match="dynamic"):
            jsonform.show([(path, drv)], NIX_STORE, version)
        return
    shown = jsonform.render(jsonform.show([(path, drv)], NIX_STORE, version), version)
    (entry,) = jsonform.from_json_any(json.loads(shown), NIX_STORE)
    assert entry.path == path
    assert print_aterm(entry.drv) == drv_text
    if version == 4:
        validator("derivation-v4.yaml").validate(json.loads(shown)["derivations"][os.path.basename(path)])


OUTPUTS = golden_files("derivation", "output-*.json")


@pytest.mark.parametrize("golden", OUTPUTS, ids=golden_id)
def test_golden_outputs_round_trip(golden: Path) -> None:
    """Nix's `DerivationOutput` goldens: drv name `drv-name`, output `output-name`."""
    value = json.loads(text(golden))
    o = jsonform.output_from_json(value, NIX_STORE, 4, "drv-name", "output-name")
    if o.is_fixed:
        assert o.path == str(fixed_output_path(NIX_STORE, "drv-name", "output-name", o))
    assert jsonform.render(jsonform.output_to_json(o, "output-name", "drv-name", NIX_STORE, 4), 4) == text(
        golden
    )


def test_hash_modulo_goldens() -> None:
    """Nix's hash-modulo goldens: the masked ATerm with each input replaced by its hash modulo.

    (Their output paths are placeholders shared by both intermediates, so they are not checked.)
    """
    directory = store_data("derivation", "hash-modulo")
    drvs = {}
    for file in directory.glob("*.json"):
        drv = parse(text(file.with_suffix(".drv")))
        drvs[str(drv_path(drv, NIX_STORE, name=json.loads(text(file))["name"]))] = drv
    hasher = ModuloHasher(NIX_STORE, drvs.__getitem__)
    modulo_files = sorted(directory.glob("*-modulo.drv"))
    assert len(modulo_files) == 4
    for modulo in modulo_files:
        drv = parse(text(directory / modulo.name.replace("-modulo", "")))
        hashes = {p: next(iter(hasher.path_hash(p).hashes.values())).base16 for p in drv.input_drvs}
        assert print_aterm(drv, mask_outputs=True, input_drv_hashes=hashes) == text(modulo), modulo.name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad-version.drv", "unknown derivation ATerm version 'invalid-version'"),
        ("bad-old-version-dyn-deps.drv", "need the 'DrvWithVersion"),
    ],
)
def test_bad_goldens_are_refused(name: str, message: str) -> None:
    with pytest.raises(DerivationParseError, match=message):
        parse(text(store_data("derivation", name)))


def golden_in_store(tmp_path: Path, name: str) -> Path:
    """A golden .drv copied under the name of its store path (the CLI takes a path's name from the file)."""
    source = store_data("derivation", name)
    drv = parse(text(source))
    drv_name = (
        json.loads(text(source.with_suffix(".json")))["name"]
        if source.with_suffix(".json").exists()
        else "fixed"
    )
    file = tmp_path / drv_path(drv, NIX_STORE, name=drv_name).base_name
    shutil.copyfile(source, file)
    return file


def test_cli_show_version_4_wraps_the_golden(tmp_path: Path) -> None:
    file = golden_in_store(tmp_path, "dyn-dep-derivation.drv")
    proc = storekit("drv", "show", "--json-format", "4", "--store-dir", "/nix/store", str(file))
    assert proc.returncode == 0, proc.stderr.decode()
    golden = json.loads(text(store_data("derivation", "dyn-dep-derivation.json")))
    assert json.loads(proc.stdout) == {"derivations": {file.name: golden}, "version": 4}
    printed = storekit("drv", "print", "-", input=proc.stdout)
    assert printed.stdout == file.read_bytes()


def test_cli_shows_a_derivation_without_outputs(tmp_path: Path) -> None:
    file = golden_in_store(tmp_path, "simple-derivation.drv")
    proc = storekit("drv", "show", "--store-dir", "/nix/store", str(file))
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)[f"/nix/store/{file.name}"]["outputs"] == {}


def test_cli_print_takes_a_bare_golden_of_another_store_dir() -> None:
    golden = store_data("derivation", "simple-derivation.json")
    proc = storekit("drv", "print", str(golden))
    assert proc.stdout == read(golden.with_suffix(".drv"))
    moved = storekit("drv", "print", "--store-dir", "/opt/store", str(golden))
    assert moved.stdout == read(golden.with_suffix(".drv")).replace(b"/nix/store/", b"/opt/store/")


def test_cli_refuses_a_fixed_path_that_the_hash_does_not_make(tmp_path: Path) -> None:
    file = golden_in_store(tmp_path, "bad-ca-fixed-path.drv")
    proc = storekit("drv", "show", "--json-format", "4", "--store-dir", "/nix/store", str(file))
    assert proc.returncode == 1
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: fixed output 'out' of 'fixed' has path"), lines


@pytest.mark.parametrize("version", ["5", "2", "true", '"4"', "null"])
def test_malformed_versions_get_one_error_line(version: str) -> None:
    golden = json.loads(text(store_data("derivation", "simple-derivation.json")))
    body = json.dumps(golden).replace('"version": 4', f'"version": {version}')
    proc = storekit("drv", "print", "-", input=body.encode())
    assert proc.returncode == 1
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "unsupported derivation JSON version" in lines[0], lines


def test_wrapper_of_another_version_is_refused() -> None:
    golden = json.loads(text(store_data("derivation", "simple-derivation.json")))
    wrapped = {
        "derivations": {"yw0vinl65a37g4w5kcyq38mjqy7v6izb-simple-derivation.drv": golden},
        "version": 3,
    }
    proc = storekit("drv", "print", "-", input=json.dumps(wrapped).encode())
    assert proc.returncode == 1
    assert proc.stderr.decode().count("\n") == 1 and "version 4" in proc.stderr.decode()


def test_cli_add_writes_the_drv_as_nix_derivation_add(tmp_path: Path) -> None:
    """An input-addressed derivation using a fixed-output one, added from format 4 JSON (stdin)."""
    from storekit.derivation.hashing import instantiate
    from storekit.derivation.model import Derivation, DerivationOutput
    from storekit.hashing import Hash
    from storekit.storepath import FileIngestionMethod

    store = tmp_path / "store"
    sd = StoreDir(str(store))
    env = {"name": "src", "builder": "/bin/sh", "system": "x86_64-linux"}
    fixed = DerivationOutput.fixed(FileIngestionMethod.RECURSIVE, Hash.of(b"x"))
    src_path, src = instantiate(Derivation({"out": fixed}, env=env), sd, lambda p: src)
    user_env = {**env, "name": "user"}
    user = Derivation({"out": DerivationOutput()}, {str(src_path): ["out"]}, env=user_env)
    user_path, user = instantiate(user, sd, lambda p: src)
    for path, drv in ((src_path, src), (user_path, user)):
        shown = jsonform.render(jsonform.show([(str(path), drv)], sd, 4), 4)
        proc = storekit("drv", "add", "--store", str(store), "-", input=shown.encode())
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode() == f"{path}\n"
        assert (store / path.base_name).read_text() == print_aterm(drv)
    shown_v2 = jsonform.to_json(user, "user", sd, 2)
    shown_v2["env"]["out"] = shown_v2["outputs"]["out"]["path"] = f"{store}/{'0' * 32}-user"
    proc = storekit("drv", "add", "--store", str(store), "-", input=json.dumps(shown_v2).encode())
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("error: derivation '") and "should be" in proc.stderr.decode()


def test_format_1_of_nix_2_15_to_2_17_lists_input_outputs() -> None:
    """Before dynamic derivations (2.18) `inputDrvs` values were plain lists; they are read too."""
    drv_text = text(store_data("derivation", "simple-derivation.drv"))
    drv = parse(drv_text)
    path = str(drv_path(drv, NIX_STORE, name="simple-derivation"))
    shown = jsonform.show([(path, drv)], NIX_STORE, 1)
    body = shown[path]
    body["inputDrvs"] = {p: node["outputs"] for p, node in body["inputDrvs"].items()}
    (entry,) = jsonform.from_json_any(shown, NIX_STORE)
    assert print_aterm(entry.drv) == drv_text and entry.name == "simple-derivation"
