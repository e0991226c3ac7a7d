"""From scratch paths to content-addressed ones: self-references, outputs referring to each other."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError
from storekit.hashing import Hash
from storekit.nar.fs import dump_path, hash_path
from storekit.realise.ca_outputs import finish_outputs, scratch_path
from storekit.references import hash_modulo
from storekit.storepath import FileIngestionMethod, StoreDir

STORE = StoreDir("/opt/store")
DRV_PATH = STORE.parse_path("/opt/store/" + "3" * 32 + "-thing.drv")
R = FileIngestionMethod.RECURSIVE


def drv(*outputs: str, method: FileIngestionMethod = R) -> Derivation:
    return Derivation(
        outputs={o: DerivationOutput.floating(method, "sha256") for o in outputs},
        system="x86_64-linux",
        builder="/bin/sh",
        env={"name": "thing"},
    )


def test_scratch_path_is_nixs_fallback_path() -> None:
    """`makeFallbackPath`: type `rewrite:<drv base name>:name:<output>`, a zero sha256, the output's name."""
    path = scratch_path(STORE, DRV_PATH, "thing", "dev")
    assert path.name == "thing-dev"
    zero = Hash("sha256", bytes(32))
    assert path == STORE.make_store_path(f"rewrite:{DRV_PATH.base_name}:name:dev", zero, "thing-dev")
    assert scratch_path(STORE, DRV_PATH, "thing", "out").name == "thing"


def test_self_reference_is_hashed_modulo_and_rewritten(tmp_path: Path) -> None:
    scratch = {"out": scratch_path(STORE, DRV_PATH, "thing", "out")}
    built = tmp_path / "built"
    built.mkdir()
    (built / "self").write_text(f"{scratch['out']}\n")
    modulo = hash_modulo(dump_path(built), scratch["out"].hash_part)
    stage = tmp_path / "stage"
    stage.mkdir()
    (done,) = finish_outputs(DRV_PATH, drv("out"), scratch, {"out": str(built)}, set(), str(stage))
    final = STORE.make_fixed_output_path("thing", R, modulo, (), self_ref=True)
    assert done.info.path == final
    assert done.info.references == {final}
    assert done.info.ca == f"fixed:r:sha256:{modulo.nix32}"
    assert done.info.deriver == DRV_PATH and done.info.ultimate
    assert (Path(done.location) / "self").read_text() == f"{final}\n"
    assert (done.info.nar_hash, done.info.nar_size) == hash_path(done.location)
    # the scratch hash part is gone; without it the path has no self-reference at all
    assert scratch["out"].hash_part not in (Path(done.location) / "self").read_text()


def test_outputs_referring_to_each_other_are_done_in_order(tmp_path: Path) -> None:
    scratch = {o: scratch_path(STORE, DRV_PATH, "thing", o) for o in ("out", "dev")}
    out, dev = tmp_path / "out", tmp_path / "dev"
    out.write_text("library\n")
    dev.mkdir()
    (dev / "lib-path").write_text(str(scratch["out"]))
    built = {"out": str(out), "dev": str(dev)}
    stage = tmp_path / "stage"
    stage.mkdir()
    done = {f.name: f for f in finish_outputs(DRV_PATH, drv("out", "dev"), scratch, built, set(), str(stage))}
    out_path = done["out"].info.path
    assert done["dev"].info.references == {out_path}
    assert (Path(done["dev"].location) / "lib-path").read_text() == str(out_path)
    assert out_path.name == "thing" and done["dev"].info.path.name == "thing-dev"


def test_a_cycle_between_outputs_is_refused(tmp_path: Path) -> None:
    scratch = {o: scratch_path(STORE, DRV_PATH, "thing", o) for o in ("out", "dev")}
    for name, other in (("out", "dev"), ("dev", "out")):
        (tmp_path / name).write_text(str(scratch[other]))
    built = {o: str(tmp_path / o) for o in scratch}
    with pytest.raises(BuildError, match="cycle detected"):
        finish_outputs(DRV_PATH, drv("out", "dev"), scratch, built, set(), str(tmp_path))


def test_missing_or_writable_outputs_are_refused(tmp_path: Path) -> None:
    scratch = {"out": scratch_path(STORE, DRV_PATH, "thing", "out")}
    with pytest.raises(BuildError, match="did not produce an output"):
        finish_outputs(DRV_PATH, drv("out"), scratch, {"out": str(tmp_path / "nope")}, set(), str(tmp_path))
    (tmp_path / "x").write_text("x")
    os.chmod(tmp_path / "x", 0o666)
    with pytest.raises(BuildError, match="group or world writable"):
        finish_outputs(DRV_PATH, drv("out"), scratch, {"out": str(tmp_path / "x")}, set(), str(tmp_path))


def test_flat_output_must_be_a_plain_file(tmp_path: Path) -> None:
    scratch = {"out": scratch_path(STORE, DRV_PATH, "thing", "out")}
    (tmp_path / "d").mkdir()
    flat = drv("out", method=FileIngestionMethod.FLAT)
    with pytest.raises(BuildError, match="non-executable regular file"):
        finish_outputs(DRV_PATH, flat, scratch, {"out": str(tmp_path / "d")}, set(), str(tmp_path))
    (tmp_path / "f").write_text("flat\n")
    stage = tmp_path / "stage"
    stage.mkdir()
    (done,) = finish_outputs(DRV_PATH, flat, scratch, {"out": str(tmp_path / "f")}, set(), str(stage))
    assert done.info.ca is not None and done.info.ca.startswith("fixed:sha256:")
    assert done.info.path.name == "thing"
