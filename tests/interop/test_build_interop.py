"""Builds against real Nix 2.8: same `.drv` in, same output paths, NAR hashes and references out.

Real Nix instantiates a set of derivations (a chain, a diamond whose outputs refer to each other, a
multiple-output derivation, a user of one output, and a builder that records what it sees of its
sandbox) for a store dir that is not /nix/store, with Debian's static busybox as the builder (added to
the store as a source, so it is part of the closure). storekit builds them in that store (Nix's own
database); real Nix builds the same expression in its sandbox (`sandbox = true`, as root with an empty
`build-users-group`) in a second store with the same store dir whose files live elsewhere (`real=`).
Real Nix then reads both stores, so every NAR hash, reference and deriver is compared as Nix sees it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from nixoracle import NixStore

pytestmark = pytest.mark.interop

REPO = Path(__file__).parent.parent.parent

EXPRESSION = r"""
{ bbdir }:
let
  bb = builtins.path { path = bbdir; name = "busybox"; };
  mk = name: script: attrs: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = "${bb}/busybox";
    args = [ "sh" "-e" "-c" script ];
  } // attrs);
in rec {
  chain1 = mk "chain1" "echo one > $out" {};
  chain2 = mk "chain2" "mkdir $out; echo ${chain1} > $out/prev; $builder cat ${chain1} > $out/copy" {};
  chain3 = mk "chain3" "mkdir $out; $builder ln -s ${chain2}/prev $out/link; $builder chmod +x $out" {};
  left = mk "left" "mkdir $out; echo ${chain1} > $out/dep; echo left" {};
  right = mk "right" "echo ${chain3} > $out" {};
  diamond = mk "diamond" ''
    mkdir -p $out/bin
    echo ${left} ${right} > $out/deps
    $builder cp -r ${left} $out/left-copy
    printf '#!%s sh\necho hi\n' ${bb}/busybox > $out/bin/hi
    $builder chmod 755 $out/bin/hi
  '' {};
  multi = mk "multi" ''
    mkdir $out $dev $lib
    echo $lib > $dev/lib-path
    echo $out > $dev/out-path
    echo $lib/self > $lib/self
    echo plain > $out/plain
  '' { outputs = [ "out" "dev" "lib" ]; };
  user = mk "user" "echo ${multi.dev} > $out" {};
  passfile = mk "passfile" "$builder cat $textPath > $out; echo $other >> $out" {
    text = "passed as a file\n"; other = "in the env"; passAsFile = [ "text" ];
  };
  introspect = mk "introspect" ''
    mkdir $out
    $builder env | $builder sort > $out/env
    $builder id > $out/id
    $builder hostname > $out/hostname
    $builder cat /etc/passwd /etc/group /etc/hosts > $out/etc
    umask > $out/umask
    pwd > $out/pwd
    echo "$$ $0 $#" > $out/process
    if [ -t 2 ]; then echo tty; else echo no-tty; fi > $out/stderr-is-tty
    $builder ls -a $NIX_STORE | $builder sort > $out/store
    $builder ls -a /build > $out/build-dir
    $builder grep -E '^(Uid|Gid|NoNewPrivs|CapEff):' /proc/self/status > $out/status
    $builder ls /proc/self/fd > $out/fds
    $builder ip -o link | $builder cut -d' ' -f2 > $out/links
    if $builder ls /etc/hostname /root 2>/dev/null; then echo visible; else echo hidden; fi > $out/host
  '' {};
}
"""

ATTRS = ("chain3", "diamond", "user", "multi", "passfile", "introspect")


def storekit(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # in a directory of its own: `build` leaves `result` links (GC roots) where it runs, not in the checkout
    with tempfile.TemporaryDirectory(prefix="storekit-cwd-") as cwd:
        proc = subprocess.run(
            [sys.executable, "-m", "storekit", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=cwd,
        )
    if check and proc.returncode != 0:
        raise AssertionError(f"storekit {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@pytest.fixture
def expression(tmp_path: Path) -> Path:
    bbdir = tmp_path / "bbdir"
    bbdir.mkdir()
    shutil.copy("/bin/busybox", bbdir / "busybox")
    (tmp_path / "default.nix").write_text(EXPRESSION)
    return tmp_path


def instantiate(nix_store: NixStore, uri: str, expr: Path, attr: str) -> str:
    args = ["nix-instantiate", "--store", uri, str(expr / "default.nix"), "-A", attr]
    args += ["--arg", "bbdir", str(expr / "bbdir")]
    return run_nix(nix_store, args).strip()


def run_nix(nix_store: NixStore, argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=nix_store.env(), check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stderr}"
    return proc.stdout


def realise(nix_store: NixStore, uri: str, *drvs: str) -> list[str]:
    """Real Nix builds in its sandbox (as root with an empty build-users-group, as in the fixture)."""
    argv = ["nix-store", "--store", uri, "--option", "sandbox", "true", "--realise", *drvs]
    return run_nix(nix_store, argv).split()


def path_infos(nix_store: NixStore, uri: str, paths: list[str]) -> dict[str, dict[str, Any]]:
    out = run_nix(nix_store, ["nix", "path-info", "--store", uri, "--json", *paths])
    return {o["path"]: o for o in json.loads(out)}


def oracle_uri(nix_store: NixStore) -> str:
    """A second store with the same store dir; its files live elsewhere, so Nix must sandbox."""
    root = nix_store.root.parent / "oracle"
    return (
        f"local?store={nix_store.store_dir}&real={root / 'store'}&state={root / 'var' / 'nix'}"
        f"&log={root / 'var' / 'log' / 'nix'}"
    )


def test_outputs_identical_to_nix_build(nix_store: NixStore, expression: Path) -> None:
    drvs = {a: instantiate(nix_store, nix_store.uri, expression, a) for a in ATTRS}
    built = storekit("build", *drvs.values(), "--store", nix_store.uri, "-j", "2").stdout.split()

    oracle = oracle_uri(nix_store)
    oracle_drvs = {a: instantiate(nix_store, oracle, expression, a) for a in ATTRS}
    assert oracle_drvs == drvs  # same store dir, same expression: the very same .drv paths
    nix_built = realise(nix_store, oracle, *drvs.values())
    # `nix-store --realise` prints every output of each derivation; storekit does too
    assert sorted(built) == sorted(nix_built)

    ours = path_infos(nix_store, nix_store.uri, built)
    theirs = path_infos(nix_store, oracle, built)
    for path in built:
        mine, nix = ours[path], theirs[path]
        for key in ("narHash", "narSize", "references", "deriver", "ca"):
            assert mine.get(key) == nix.get(key), (path, key, mine.get(key), nix.get(key))
        assert mine["ultimate"] is True

    # and real Nix accepts what storekit registered, contents included
    run_nix(nix_store, ["nix-store", "--store", nix_store.uri, "--verify", "--check-contents"])


def test_sandbox_looks_like_nix(nix_store: NixStore, expression: Path) -> None:
    """What a builder sees (env, ids, /etc, store listing, tty, pid) is the same file tree as in Nix."""
    drv = instantiate(nix_store, nix_store.uri, expression, "introspect")
    (out,) = storekit("build", drv, "--store", nix_store.uri).stdout.split()
    oracle = oracle_uri(nix_store)
    instantiate(nix_store, oracle, expression, "introspect")
    realise(nix_store, oracle, drv)
    nix_out = Path(oracle.split("real=")[1].split("&")[0]) / os.path.basename(out)
    for f in sorted(os.listdir(nix_out)):
        assert (Path(out) / f).read_text() == (nix_out / f).read_text(), f
    assert (Path(out) / "host").read_text() == "hidden\n"
    assert (Path(out) / "process").read_text() == "1 sh 0\n"


def test_nix_reads_storekit_logs_and_registrations(nix_store: NixStore, expression: Path) -> None:
    drv = instantiate(nix_store, nix_store.uri, expression, "left")
    (out,) = storekit("build", drv, "--store", nix_store.uri).stdout.split()
    # `nix log` reads the bzip2 log storekit wrote, by .drv and by output path
    assert run_nix(nix_store, ["nix", "log", "--store", nix_store.uri, drv]) == "left\n"
    assert storekit("log", out, "--store", nix_store.uri).stdout == "left\n"
    # Nix's DerivationOutputs and the deriver: `nix-store -q --deriver` and `--outputs`
    assert run_nix(nix_store, ["nix-store", "--store", nix_store.uri, "-q", "--deriver", out]).strip() == drv
    assert run_nix(nix_store, ["nix-store", "--store", nix_store.uri, "-q", "--outputs", drv]).strip() == out
    # built again: nothing to do, same answer
    assert storekit("build", drv, "--store", nix_store.uri).stdout.split() == [out]


def test_storekit_reads_nix_logs(nix_store: NixStore, expression: Path) -> None:
    drv = instantiate(nix_store, nix_store.uri, expression, "left")
    nix_store.run("nix-build", "--no-out-link", drv)
    assert storekit("log", drv, "--store", nix_store.uri).stdout == "left\n"


def test_recipe_gives_the_drv_nix_instantiates(nix_store: NixStore, tmp_path: Path) -> None:
    """A TOML recipe and the equivalent `derivation { … }` make the same .drv (same path, same bytes)."""
    bb = nix_store.text("nix-store", "--add", "/bin/busybox")
    (tmp_path / "dep.toml").write_text(
        f'name = "dep"\nbuilder = "{bb}"\nargs = ["sh", "-c", "echo dep > $out"]\n'
        f'outputs = ["out", "doc"]\n[inputs]\nbb = "{bb}"\n'
    )
    (tmp_path / "top.toml").write_text(
        f'name = "top"\nbuilder = "{bb}"\nargs = ["sh", "-c", "echo ${{inputs.dep.doc}} > $out"]\n'
        'system = "x86_64-linux"\n'
        f'[inputs]\nbb = "{bb}"\ndep = {{ recipe = "dep.toml" }}\n'
        '[env]\nGREETING = "hi from ${inputs.dep}"\nshell_var = "${out} and $out stay"\n'
    )
    (tmp_path / "fod.toml").write_text(
        f'name = "fod"\nbuilder = "{bb}"\nargs = ["sh", "-c", "echo x > $out"]\n[inputs]\nbb = "{bb}"\n'
        '[fixed-output]\nhash = "sha256-LQ4+8NmEjrkdHqRvV66N4kRHXY9OI2vMFrnR0o1J0xY="\nmode = "recursive"\n'
    )
    (tmp_path / "exprs.nix").write_text(
        f"""let bb = builtins.storePath {bb};
          sys = builtins.currentSystem;
          dep = derivation {{ name = "dep"; builder = bb; system = sys; args = ["sh" "-c" "echo dep > $out"];
                              outputs = ["out" "doc"]; }};
        in {{
          top = derivation {{ name = "top"; builder = bb; system = "x86_64-linux";
                             args = ["sh" "-c" "echo ${{dep.doc}} > $out"];
                             GREETING = "hi from ${{dep}}"; shell_var = "\\${{out}} and $out stay"; }};
          fod = derivation {{ name = "fod"; builder = bb; system = sys; args = ["sh" "-c" "echo x > $out"];
                             outputHash = "sha256-LQ4+8NmEjrkdHqRvV66N4kRHXY9OI2vMFrnR0o1J0xY=";
                             outputHashMode = "recursive"; }};
        }}"""
    )
    for attr in ("top", "fod"):
        want = nix_store.text("nix-instantiate", str(tmp_path / "exprs.nix"), "-A", attr)
        got = storekit("drv", "instantiate", str(tmp_path / f"{attr}.toml"), "--store", nix_store.uri)
        assert got.stdout.strip() == want
