"""Path info JSON of every Nix version (`storekit store info --json --json-format N`).

The per-path objects are checked against NixOS/nix's golden files (versions 1-3, pure and impure):
reading gives the value, writing the value gives the file. Version 3 must validate against Nix's
store-object-info-v3 schema, and the CLI's documents must read back to what the store holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nixgolden import golden_files, golden_id, read, validator

from storekit.store import info_json
from storekit.storepath import StoreDir

REPO = Path(__file__).parent.parent.parent
SD = StoreDir("/nix/store")
PATH = SD.parse_path("/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo")
GOLDEN = [*golden_files("path-info", "json-*/*.json"), *golden_files("nar-info", "json-*/*.json")]
NARINFO_ONLY = {"compression", "downloadHash", "downloadSize", "url"}


def nlohmann(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("golden", GOLDEN, ids=golden_id)
def test_golden_objects_round_trip(golden: Path) -> None:
    expected = json.loads(read(golden))
    version = expected.get("version", 1)
    info = info_json.from_json(expected, SD, PATH)
    impure = "deriver" in expected
    shown = info_json.to_json(info, SD, version, impure=impure)
    body = {k: v for k, v in expected.items() if k not in NARINFO_ONLY}
    if "version" not in expected:  # the oldest form names neither version nor store dir
        shown = {k: v for k, v in shown.items() if k not in ("version", "storeDir")}
    assert nlohmann(shown) == nlohmann(body)
    if golden.parent.parent.name == "path-info":
        assert nlohmann(shown) == read(golden).decode()
    if version == 3:
        validator("store-object-info-v3.yaml").validate(shown)


def storekit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args], capture_output=True, text=True, env=env, check=False
    )


def test_cli_prints_every_format_and_they_read_back(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (tmp_path / "f").write_text("hello\n")
    path = storekit("store", "add", "--store", str(store), str(tmp_path / "f")).stdout.strip()
    sd = StoreDir(str(store))
    infos = []
    for version in info_json.INFO_FORMATS:
        proc = storekit("store", "info", "--store", str(store), "--json", "--json-format", str(version), path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.endswith("\n") == (version > 0)  # Nix 2.8 ends without a newline
        doc = json.loads(proc.stdout)
        (info,) = info_json.read_document(doc, sd)
        infos.append(info)
        if version == 3:
            for obj in doc["info"].values():
                validator("store-object-info-v3.yaml").validate(obj)
            assert list(doc["info"]) == [os.path.basename(path)] and doc["storeDir"] == str(store)
        if version == 1:
            assert list(doc) == [path]
    assert all(i == infos[0] for i in infos) and str(infos[0].path) == path
    assert infos[0].ca is not None and infos[0].ca.startswith("fixed:r:sha256:")
