"""Content-addressed derivations against real Nix 2.8 (`experimental-features = ca-derivations`).

Real Nix instantiates a small CA world for a store dir that is not /nix/store: `a` (floating CA, refers
to itself), `b` (CA, uses `a`), `multi` (CA with two outputs, `dev` referring to `out`) and `c`
(input-addressed but deferred, as it uses CA outputs). storekit builds it in its sandbox; real Nix
builds the same `.drv`s in its sandbox in a second store with the same store dir (`real=` elsewhere).
Output paths, NAR hashes, references, content addresses, derivers and realisations (as
`nix realisation info` prints them) must agree; stores and caches written by one are read by the other.
Each builder prints `built`, so `-L` shows which derivations really ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from nixoracle import NixStore

from storekit.derivation.fs import read_derivation
from storekit.realise.content_addressed import drv_outputs, modulo_hasher
from storekit.store.local import LocalStore
from storekit.store.open import open_store
from storekit.store.specs import parse_store_spec
from storekit.wire.common import realisation_to_json

pytestmark = pytest.mark.interop

REPO = Path(__file__).parent.parent.parent
ATTRS = ("a", "b", "multi", "c")

EXPRESSION = r"""
{ bbdir, comment ? "first" }:
let
  bb = builtins.path { path = bbdir; name = "busybox"; };
  mk = name: script: attrs: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = "${bb}/busybox";
    args = [ "sh" "-e" "-c" "echo built\n${script}" ];
  } // attrs);
  ca = { __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256"; };
in rec {
  a = mk "a" "# ${comment}\necho out=$out\nmkdir $out; echo hello > $out/greeting; echo $out > $out/self" ca;
  b = mk "b" "mkdir $out; $builder cat ${a}/greeting > $out/copy; echo ${a} > $out/dep" ca;
  multi = mk "multi" "mkdir $out $dev; echo lib > $out/lib; echo $out > $dev/out-path" (ca // {
    outputs = [ "out" "dev" ];
  });
  c = mk "c" "echo ${b} ${multi.dev} > $out" {};
  slow = mk "slow" "$builder sleep 2; echo slow > $out" ca;
  fod = mk "fod" "$builder cat ${b}/copy > /dev/null; echo fixed > $out" {
    outputHash = "sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ=";
  };
}
"""


def nix_env(nix_store: NixStore) -> dict[str, str]:
    env = nix_store.env()
    env["NIX_CONFIG"] += "\nexperimental-features = nix-command ca-derivations"
    return env


def run_nix(nix_store: NixStore, *argv: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=nix_env(nix_store), check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stderr}"
    return proc


def storekit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory(prefix="storekit-cwd-") as cwd:
        proc = subprocess.run(
            [sys.executable, "-m", "storekit", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=cwd,
        )
    assert proc.returncode == 0, f"storekit {' '.join(args)} failed:\n{proc.stderr}"
    return proc


def built_names(stderr: str) -> list[str]:
    """The derivations whose builder ran (each prints `built`; `-L` prefixes it with the name)."""
    return sorted(m.group(1) for m in re.finditer(r"^(\S+)> built$", stderr, re.MULTILINE))


@pytest.fixture
def expression(tmp_path: Path) -> Path:
    bbdir = tmp_path / "bbdir"
    bbdir.mkdir()
    shutil.copy("/bin/busybox", bbdir / "busybox")
    (tmp_path / "default.nix").write_text(EXPRESSION)
    return tmp_path


def instantiate(nix_store: NixStore, uri: str, expr: Path, attr: str, comment: str = "first") -> str:
    out = run_nix(
        nix_store, "nix-instantiate", "--store", uri, str(expr / "default.nix"), "-A", attr,
        "--arg", "bbdir", str(expr / "bbdir"), "--argstr", "comment", comment,
    )  # fmt: skip
    return out.stdout.strip()


def other_store(nix_store: NixStore, name: str) -> str:
    """A store with the same store dir whose files live elsewhere (so Nix must sandbox)."""
    root = nix_store.root.parent / name
    return (
        f"local?store={nix_store.store_dir}&real={root / 'store'}&state={root / 'var' / 'nix'}"
        f"&log={root / 'var' / 'log' / 'nix'}"
    )


def realisations(nix_store: NixStore, uri: str, drv: str) -> list[dict[str, Any]]:
    out = run_nix(nix_store, "nix", "realisation", "info", "--store", uri, "--json", drv).stdout
    return sorted(json.loads(out), key=lambda r: r["id"])


def path_infos(nix_store: NixStore, uri: str, paths: list[str]) -> dict[str, dict[str, Any]]:
    out = run_nix(nix_store, "nix", "path-info", "--store", uri, "--json", *paths).stdout
    return {o["path"]: o for o in json.loads(out)}


def outputs_of(nix_store: NixStore, uri: str, drv: str) -> list[str]:
    return sorted(f"{nix_store.store_dir}/{r['outPath']}" for r in realisations(nix_store, uri, drv))


def test_ca_builds_like_nix(nix_store: NixStore, expression: Path) -> None:
    drvs = {a: instantiate(nix_store, nix_store.uri, expression, a) for a in ATTRS}
    proc = storekit("build", drvs["c"], drvs["multi"], "--store", nix_store.uri, "-L", "--no-out-link")
    assert built_names(proc.stderr) == ["a", "b", "c", "multi"]

    oracle = other_store(nix_store, "oracle")
    assert {a: instantiate(nix_store, oracle, expression, a) for a in ATTRS} == drvs
    nix_built = run_nix(
        nix_store,
        "nix-store",
        "--store",
        oracle,
        "--option",
        "sandbox",
        "true",
        "--realise",
        drvs["c"],
        drvs["multi"],
    ).stdout.split()
    assert sorted(proc.stdout.split()) == sorted(nix_built)

    for attr, drv in drvs.items():  # the realisations of the .drv Nix instantiated, and of those they need
        mine, nix = realisations(nix_store, nix_store.uri, drv), realisations(nix_store, oracle, drv)
        assert mine == nix, attr
    every = sorted({p for drv in drvs.values() for p in outputs_of(nix_store, oracle, drv)})
    assert len(every) == 5
    ours, theirs = path_infos(nix_store, nix_store.uri, every), path_infos(nix_store, oracle, every)
    for path in every:
        for key in ("narHash", "narSize", "references", "ca", "deriver"):
            assert ours[path].get(key) == theirs[path].get(key), (path, key)
    a_out = outputs_of(nix_store, oracle, drvs["a"])[0]
    assert (Path(a_out) / "self").read_text() == a_out + "\n"  # the self-reference, rewritten
    assert a_out in ours[a_out]["references"]
    run_nix(nix_store, "nix-store", "--store", nix_store.uri, "--verify", "--check-contents")
    # the builder saw the same scratch path for $out (Nix's makeFallbackPath) in both
    logs = [
        run_nix(nix_store, "nix", "log", "--store", uri, drvs["a"]).stdout for uri in (nix_store.uri, oracle)
    ]
    assert logs[0] == logs[1]
    assert re.search(r"^out=/\S+-a$", logs[0], re.MULTILINE)


def test_fixed_output_using_a_ca_input(nix_store: NixStore, expression: Path) -> None:
    """A fixed-output derivation whose input is content-addressed is resolved before it is built."""
    fod = instantiate(nix_store, nix_store.uri, expression, "fod")
    proc = storekit("build", fod, "--store", nix_store.uri, "-L", "--no-out-link")
    assert built_names(proc.stderr) == ["a", "b", "fod"]
    oracle = other_store(nix_store, "oracle")
    instantiate(nix_store, oracle, expression, "fod")
    nix_out = run_nix(
        nix_store, "nix-store", "--store", oracle, "--option", "sandbox", "true", "--realise", fod
    )
    assert proc.stdout.split() == nix_out.stdout.split()
    assert realisations(nix_store, nix_store.uri, fod) == realisations(nix_store, oracle, fod)


def test_two_processes_build_once(nix_store: NixStore, expression: Path) -> None:
    """Two `storekit build`s of one CA derivation at once: the second waits on the scratch paths'
    locks, then finds the first one's realisation; the builder runs once."""
    drv = instantiate(nix_store, nix_store.uri, expression, "slow")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "storekit", "build", drv, "--store", nix_store.uri, "-L", "--no-out-link"]
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in "12"
    ]
    results = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted(n for _, err in results for n in built_names(err)) == ["slow"]
    assert results[0][0] == results[1][0] != ""


def test_early_cutoff(nix_store: NixStore, expression: Path) -> None:
    """A changed comment in `a` rebuilds `a`, to the same output: `b` and `c` are not built again."""
    first = instantiate(nix_store, nix_store.uri, expression, "c")
    proc = storekit("build", first, "--store", nix_store.uri, "-L", "--no-out-link")
    assert built_names(proc.stderr) == ["a", "b", "c", "multi"]

    second = instantiate(nix_store, nix_store.uri, expression, "c", comment="second")
    assert second != first
    again = storekit("build", second, "--store", nix_store.uri, "-L", "--no-out-link")
    assert built_names(again.stderr) == ["a"]
    assert again.stdout == proc.stdout
    # real Nix finds the new derivation's realisation, with those of the inputs its output refers to
    (real,) = realisations(nix_store, nix_store.uri, second)
    assert nix_store.store_dir + "/" + real["outPath"] == proc.stdout.strip()
    assert sorted(p.split("-", 1)[1] for p in real["dependentRealisations"].values()) == ["b", "multi-dev"]
    # and nothing is left to do for either
    assert built_names(storekit("build", first, second, "--store", nix_store.uri, "-L").stderr) == []


def test_storekit_uses_nix_realisations(nix_store: NixStore, expression: Path) -> None:
    """A store where real Nix built the CA world: storekit finds every output through Nix's rows."""
    drvs = {a: instantiate(nix_store, nix_store.uri, expression, a) for a in ATTRS}
    nix_out = run_nix(nix_store, "nix-store", "--store", nix_store.uri, "--realise", drvs["c"]).stdout.split()
    proc = storekit("build", drvs["c"], drvs["b"], "--store", nix_store.uri, "-L", "--no-out-link")
    assert built_names(proc.stderr) == []
    assert proc.stdout.split() == [*nix_out, *outputs_of(nix_store, nix_store.uri, drvs["b"])]
    # storekit's reading of Nix's rows is what `nix realisation info` prints
    for drv in drvs.values():
        cli = storekit("store", "realisation", "--json", drv, "--store", nix_store.uri).stdout
        assert sorted(json.loads(cli), key=lambda r: r["id"]) == realisations(nix_store, nix_store.uri, drv)
    store = open_store(parse_store_spec(nix_store.uri))
    assert isinstance(store, LocalStore)
    try:
        for drv in drvs.values():
            path = store.store_dir.parse_path(drv)
            name = path.name.removesuffix(".drv")
            keys = drv_outputs(modulo_hasher(store), read_derivation(Path(drv)), name)
            for nix in realisations(nix_store, nix_store.uri, drv):
                mine = store.query_realisation(keys[nix["id"].rsplit("!", 1)[1]])
                assert mine is not None and str(mine.id) == nix["id"]
                assert json.loads(realisation_to_json(mine)) == nix
    finally:
        store.close()


def test_realisations_through_caches(nix_store: NixStore, expression: Path, tmp_path: Path) -> None:
    """storekit pushes realisations that real Nix substitutes from, and substitutes Nix's."""
    c = instantiate(nix_store, nix_store.uri, expression, "c")
    out = storekit("build", c, "--store", nix_store.uri, "--no-out-link").stdout.strip()
    cache = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}"
    storekit("copy", "--from", nix_store.uri, "--to", cache, out, "-q")
    assert os.listdir(tmp_path / "cache" / "realisations")

    fresh = other_store(nix_store, "nix-fresh")
    assert instantiate(nix_store, fresh, expression, "c") == c
    proc = run_nix(
        nix_store, "nix-store", "--store", fresh, "--realise", c,
        "--option", "substituters", cache, "--option", "require-sigs", "false",
    )  # fmt: skip
    assert proc.stdout.split() == [out]
    assert "building '" not in proc.stderr
    assert realisations(nix_store, fresh, c) == realisations(nix_store, nix_store.uri, c)

    # the other way: real Nix builds signing paths and realisations, pushes them, and storekit
    # substitutes into a store holding only the .drv files, requiring signatures by Nix's key
    key = tmp_path / "key"
    run_nix(nix_store, "nix-store", "--generate-binary-cache-key", "nix-1", f"{key}.sec", f"{key}.pub")
    signed = other_store(nix_store, "nix-signed")
    instantiate(nix_store, signed, expression, "c")
    run_nix(
        nix_store,
        "nix-store",
        "--store",
        signed,
        "--option",
        "secret-key-files",
        f"{key}.sec",
        "--realise",
        c,
    )
    nix_cache = f"file://{tmp_path / 'nix-cache'}?store={nix_store.store_dir}"
    run_nix(
        nix_store, "nix", "copy", "--store", signed, "--to", nix_cache,
        "--file", str(expression / "default.nix"), "--arg", "bbdir", str(expression / "bbdir"), "c",
    )  # fmt: skip
    mine = other_store(nix_store, "storekit-fresh")
    storekit("copy", "--from", nix_store.uri, "--to", mine, c, "-q")
    pub = (tmp_path / "key.pub").read_text().strip()
    args = ("--store", mine, "-L", "--no-out-link", "--substituters", nix_cache, "--trusted-public-keys", pub)
    got = storekit("build", c, *args)
    assert built_names(got.stderr) == []
    assert got.stdout.split() == [out]
    (theirs,) = realisations(nix_store, signed, c)
    assert theirs["signatures"] and realisations(nix_store, mine, c) == [theirs]
    # unsigned (storekit's first cache) is not believed when signatures are required: built instead
    other = other_store(nix_store, "storekit-strict")
    storekit("copy", "--from", nix_store.uri, "--to", other, c, "-q")
    strict = storekit("build", c, "--store", other, "-L", "--no-out-link", "--substituters", cache)
    assert built_names(strict.stderr) == ["a", "b", "c", "multi"]
