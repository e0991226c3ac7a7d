"""Real Nix 2.8 uses a storekit store on another machine over ssh (`remote-program=storekit nix-store`).

`nix copy --to` and `--from`, `nix path-info --store ssh://…`, and `nix-build --builders … --max-jobs 0`
building on the storekit side in its sandbox: the same NAR hashes as real Nix's own sandboxed build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from nixoracle import NixStore
from serve_fixtures import Sides, make_sides
from sshd_server import Sshd

pytestmark = pytest.mark.interop

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
  one = mk "one" "echo one > $out; echo building-one-now" {};
  two = mk "two" "mkdir $out; echo ${one} > $out/prev; $builder cat ${one} > $out/copy" {};
  multi = mk "multi" ''
    mkdir $out $dev
    echo $out > $dev/out-path
    echo ${two} > $out/two
  '' { outputs = [ "out" "dev" ]; };
}
"""


@pytest.fixture
def sides(nix_store: NixStore, sshd: Sshd, tmp_path: Path) -> Sides:
    return make_sides(nix_store, sshd, tmp_path)


@pytest.fixture
def expr(tmp_path: Path) -> Path:
    d = tmp_path / "expr"
    (d / "bbdir").mkdir(parents=True)
    shutil.copy("/bin/busybox", d / "bbdir" / "busybox")
    (d / "default.nix").write_text(EXPRESSION)
    return d


def nix_build(sides: Sides, store: str, expr: Path, attr: str, *extra: str) -> list[str]:
    argv = ["nix-build", "--store", store, str(expr / "default.nix"), "-A", attr, "--no-out-link"]
    return sides.nix(*argv, "--arg", "bbdir", str(expr / "bbdir"), *extra).stdout.split()


def test_copy_to_and_from_a_storekit_store(sides: Sides, expr: Path, tmp_path: Path) -> None:
    client = sides.client.uri
    out = nix_build(sides, client, expr, "multi")
    closure = sides.nix("nix-store", "--store", client, "-qR", *out).stdout.split()
    sides.nix("nix", "copy", "--to", sides.ssh_uri(), *out)

    # what arrived is what Nix had: read by real Nix straight from the far store's database
    mine = sides.path_infos(client, closure)
    far = sides.path_infos(sides.far_uri, closure)
    assert set(far) == set(closure)
    for p in closure:
        for key in ("narHash", "narSize", "references", "deriver", "ca"):
            assert far[p].get(key) == mine[p].get(key), (p, key)
    sides.nix("nix-store", "--store", sides.far_uri, "--verify", "--check-contents")

    # `nix path-info --store ssh://…` asks the server (QueryPathInfos, QueryClosure)
    remote = sides.path_infos(sides.ssh_uri(), out, "-r")
    assert set(remote) == set(closure)
    assert {p: remote[p]["narHash"] for p in closure} == {p: mine[p]["narHash"] for p in closure}

    # and back: a fresh Nix store with the same store dir gets the closure from the storekit side
    back = tmp_path / "back"
    back_uri = f"local?store={sides.client.store_dir}&real={back / 'store'}&state={back / 'var/nix'}"
    sides.nix("nix", "copy", "--from", sides.ssh_uri(), "--to", back_uri, *out)
    assert set(sides.path_infos(back_uri, out, "-r")) == set(closure)
    sides.nix("nix-store", "--store", back_uri, "--verify", "--check-contents")


def oracle_build(sides: Sides, expr: Path, tmp_path: Path, attr: str) -> dict[str, str]:
    """Real Nix builds `attr` itself, sandboxed, in a store with the same store dir: NAR hash by path."""
    root = tmp_path / "oracle"
    uri = f"local?store={sides.client.store_dir}&real={root / 'store'}&state={root / 'var/nix'}"
    out = nix_build(sides, uri, expr, attr, "--option", "sandbox", "true")
    return {p: i["narHash"] for p, i in sides.path_infos(uri, out, "-r").items()}


def test_nix_builds_on_a_storekit_builder(sides: Sides, expr: Path, tmp_path: Path) -> None:
    builders = f"{sides.ssh_uri(remote_store=None)} x86_64-linux - 1 1"
    proc_out = nix_build(sides, sides.client.uri, expr, "multi", "--builders", builders, "--max-jobs", "0")
    client = sides.path_infos(sides.client.uri, proc_out, "-r")
    # built on the far side, in storekit's sandbox: the outputs are valid there, registered by storekit
    far = sides.path_infos(sides.far_uri, proc_out, "-r")
    assert set(far) == set(client)
    built_far = {p for p, i in far.items() if i.get("deriver")}
    assert any("-one" in p for p in built_far) and any("-multi" in p for p in built_far)
    logs = {f.name for f in (sides.far_root / "var/log/nix/drvs").rglob("*") if f.is_file()}
    assert any(n.endswith("-multi.drv.bz2") for n in logs), logs  # storekit's build log, on the far side
    # the same NAR hashes as Nix's own sandboxed build of the same derivations
    assert {p: i["narHash"] for p, i in client.items()} == oracle_build(sides, expr, tmp_path, "multi")


def test_the_build_log_reaches_the_client(sides: Sides, expr: Path) -> None:
    builders = f"{sides.ssh_uri(remote_store=None)} x86_64-linux - 1 1"
    argv = ["nix-build", "--store", sides.client.uri, str(expr / "default.nix"), "-A", "one", "--no-out-link"]
    proc = sides.nix(*argv, "--arg", "bbdir", str(expr / "bbdir"), "--builders", builders, "--max-jobs", "0")
    assert "building-one-now" in proc.stderr
