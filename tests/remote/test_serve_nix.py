"""Real Nix 2.8 uses a storekit store on another machine over ssh (`remote-program=storekit nix-store`).

`nix copy --to` and `--from`, `nix path-info --store ssh://…`, and `nix-build --builders … --max-jobs 0`
building on the storekit side in its sandbox: the same NAR hashes as real Nix's own sandboxed build.

The two sides share one store dir (`<tmp>/nix/store`, where the client's files are) and keep their
files apart: the storekit side is a `real=` store under `<tmp>/far`. The far side is reached through
the session's sshd as Nix reaches any machine (`ssh://`, `$NIX_SSHOPTS`), and runs a wrapper script
(what a user's profile would do) that gives storekit a PATH with bwrap on it and `$STOREKIT_STORE`;
`nix copy` names the store with Nix's `remote-store=` URI parameter instead (passed on as `--store`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nixoracle import NixStore
from sshd_server import Sshd

pytestmark = pytest.mark.interop


def storekit_program() -> str:
    """The storekit of this venv (the far side is the same machine)."""
    return str(Path(sys.executable).parent / "storekit")


@dataclass
class Sides:
    client: NixStore
    sshd: Sshd
    far_root: Path
    wrapper: Path

    @property
    def far_uri(self) -> str:
        r = self.far_root
        return (
            f"local?store={self.client.store_dir}&real={r / 'store'}&state={r / 'var' / 'nix'}"
            f"&log={r / 'var' / 'log' / 'nix'}"
        )

    def ssh_uri(self, remote_store: str | None = "", program: str | None = None) -> str:
        """The far side as Nix names it; `remote_store=None` leaves the store to the far side's
        `$STOREKIT_STORE` (builder URIs must stay short: Nix makes a lock file named after them)."""
        params = {"remote-program": program or f"{self.wrapper} nix-store"}
        if remote_store is not None:
            params["remote-store"] = remote_store or self.far_uri
        return f"ssh://{self.sshd.host}?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"

    def env(self) -> dict[str, str]:
        return self.sshd.env(self.client.env())

    def nix(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env(), check=False,
                              stdin=subprocess.DEVNULL)  # fmt: skip
        if check:
            assert proc.returncode == 0, f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}"
        return proc

    def path_infos(
        self, store: str, paths: list[str], *extra: str, check: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Real Nix's `path-info --json` by path; without `check`, invalid paths are left out."""
        proc = self.nix("nix", "path-info", "--store", store, "--json", *extra, *paths, check=check)
        if proc.returncode != 0:
            return {}
        return {o["path"]: o for o in json.loads(proc.stdout) if o.get("valid", True)}


def make_sides(client: NixStore, sshd: Sshd, tmp: Path) -> Sides:
    far = tmp / "far"
    far.mkdir()
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    env = {"PATH": path, "HOME": str(far / "home"), "XDG_CONFIG_HOME": str(far / "config")}
    sides = Sides(client, sshd, far, Path())
    env["STOREKIT_STORE"] = sides.far_uri
    sides.wrapper = sshd.wrapper(f"sk-{abs(hash(str(tmp))):x}", storekit_program(), env)
    return sides


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
  hangs = mk "hangs" "echo hanging; $builder sleep 600" {};
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


def test_a_far_side_with_another_store_dir_is_refused(sides: Sides, expr: Path, tmp_path: Path) -> None:
    out = nix_build(sides, sides.client.uri, expr, "one")
    other = tmp_path / "other" / "store"
    proc = sides.nix("nix", "copy", "--to", sides.ssh_uri(remote_store=str(other)), *out, check=False)
    assert proc.returncode != 0
    line = next(x for x in proc.stderr.splitlines() if "store dir mismatch" in x)
    assert f"'{other}'" in line and f"'{sides.client.store_dir}'" in line, proc.stderr


def test_a_hanging_build_is_cut_off_by_the_clients_timeout(sides: Sides, expr: Path) -> None:
    builders = f"{sides.ssh_uri(remote_store=None)} x86_64-linux - 1 1"
    argv = [
        "nix-build",
        "--store",
        sides.client.uri,
        str(expr / "default.nix"),
        "-A",
        "hangs",
        "--no-out-link",
    ]
    argv += [
        "--arg",
        "bbdir",
        str(expr / "bbdir"),
        "--builders",
        builders,
        "--max-jobs",
        "0",
        "--timeout",
        "2",
    ]
    proc = sides.nix(*argv, check=False)
    assert proc.returncode != 0
    assert "timed out after 2 seconds" in proc.stderr, proc.stderr


def _wait_for(condition: Callable[[], bool], what: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_a_copy_killed_midway_leaves_nothing_and_a_retry_works(sides: Sides, tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.mkdir()
    with open(src / "blob", "wb") as f:
        for _ in range(256):
            f.write(os.urandom(1 << 20))
    path = sides.nix("nix-store", "--store", sides.client.uri, "--add", str(src)).stdout.strip()
    far_store = sides.far_root / "store"

    def staged_bytes() -> int:
        dirs = [d for d in far_store.glob(".storekit-tmp-*") if d.is_dir()] if far_store.exists() else []
        return sum(f.stat().st_size for d in dirs for f in d.rglob("*") if f.is_file())

    argv = ["nix", "copy", "--to", sides.ssh_uri(), path]
    copy = subprocess.Popen(argv, env=sides.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        _wait_for(lambda: staged_bytes() > 0 or copy.poll() is not None, "the NAR to start arriving")
        assert copy.poll() is None, "the copy finished before it could be interrupted"
    finally:
        os.killpg(copy.pid, signal.SIGKILL)  # nix and its ssh: the far side sees the pipe close
        copy.wait()
    _wait_for(lambda: not any(far_store.glob(".storekit-tmp-*")), "the far side to clean up")
    assert not sides.path_infos(sides.far_uri, [path], check=False)
    assert {p.name for p in far_store.iterdir()} <= {".links"}

    sides.nix(*argv)  # and again, to the end
    assert (
        sides.path_infos(sides.far_uri, [path])[path]["narHash"]
        == sides.path_infos(sides.client.uri, [path])[path]["narHash"]
    )
    sides.nix("nix-store", "--store", sides.far_uri, "--verify", "--check-contents")
