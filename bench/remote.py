"""Remote builds over loopback ssh: 50 independent derivations on one builder with two job slots,
`storekit build --builders … --max-jobs 0` vs Nix 2.8's `nix-store --realise --builders … -j0`.

The far side is the same for both: real Nix 2.8's `nix-store --serve --write` (sandbox off) behind a
Debian sshd on 127.0.0.1 started for the run (tests/sshd_server.py), with the store dir both clients
use; it is wiped between runs, so each client copies busybox there, builds 50 derivations
(`echo i > $out`) and copies 50 outputs back. Both clients build the same `.drv` files, which real
Nix instantiated into each client's store (the same store dir, files elsewhere: `real=`). What is
measured is the per-derivation cost of remote building: connections, the protocol, copies. Nix's
build hook opens an ssh connection per derivation; storekit keeps one per job slot. One run each
(a run is tens of seconds); storekit's time includes starting its CLI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench._harness import Row, storekit_argv, storekit_env, work_dir

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sshd_server import Sshd, missing_tools

TITLE = "Remote builds over loopback ssh: 50 independent drvs, one builder with 2 slots (vs Nix 2.8)"

EXPRESSION = r"""
{ bbdir, wide }:
let
  bb = builtins.path { path = bbdir; name = "busybox"; };
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "${bb}/busybox";
    args = [ "sh" "-c" script ];
  };
in builtins.genList (i: mk "remote-${toString i}" "echo ${toString i} > $out") wide
"""
NIX_CONFIG = "\n".join(
    [
        "experimental-features = nix-command",
        "sandbox = false",
        "build-users-group =",
        "substituters =",
        "builders-use-substitutes = false",
    ]
)


def _client_uri(store_dir: str, root: Path) -> str:
    return f"local?store={store_dir}&state={root}/var/nix&log={root}/var/log/nix&real={root}/store"


def _far_program(sshd: Sshd, store_dir: str, far: Path) -> Path:
    env = {
        "NIX_CONFIG": NIX_CONFIG,
        "NIX_STORE_DIR": store_dir,
        "NIX_STATE_DIR": str(far / "var" / "nix"),
        "NIX_LOG_DIR": str(far / "var" / "log" / "nix"),
        "HOME": str(far / "home"),
    }
    return sshd.wrapper("bench-far-nix-store", "/usr/bin/nix-store", env)


def _wipe(*dirs: Path) -> None:
    for d in dirs:
        if d.exists():
            subprocess.run(["chmod", "-R", "u+w", str(d)], check=False)
            shutil.rmtree(d, ignore_errors=True)


def _instantiate(uri: str, expr: Path, wide: int, env: dict[str, str]) -> list[str]:
    argv = ["nix-instantiate", "--store", uri, str(expr / "default.nix")]
    argv += ["--arg", "bbdir", str(expr / "bbdir"), "--arg", "wide", str(wide)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout.split()


def _timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} … failed:\n{done.stderr[-3000:]}")
    return elapsed


def run(quick: bool) -> list[Row]:
    if missing_tools() or shutil.which("nix-store") is None:
        print("remote bench skipped: needs sshd/ssh (openssh-server) and Nix 2.8 (nix-bin)")
        return []
    wide = 10 if quick else 50
    work = work_dir("bench-remote-")
    sshd = Sshd(work / "sshd")
    sshd.start()
    try:
        return [_measure(work, sshd, wide)]
    finally:
        sshd.stop()
        _wipe(work / "shared", work / "far", work / "client-sk", work / "client-nix")


def _measure(work: Path, sshd: Sshd, wide: int) -> Row:
    store_dir = str(work / "shared" / "store")
    expr = work / "expr"
    (expr / "bbdir").mkdir(parents=True)
    shutil.copy("/bin/busybox", expr / "bbdir" / "busybox")
    (expr / "default.nix").write_text(EXPRESSION)
    far = work / "far"
    program = _far_program(sshd, store_dir, far)
    machine = f"ssh://{sshd.host}?remote-program={program}&store={store_dir} x86_64-linux - 2"
    base = {**sshd.env(), "NIX_CONFIG": NIX_CONFIG}

    sk_root = work / "client-sk"
    sk_env = storekit_env({**base, "HOME": str(sk_root / "home")})
    sk_uri = _client_uri(store_dir, sk_root)
    drvs = _instantiate(sk_uri, expr, wide, sk_env)
    sk_argv = [*storekit_argv(), "build", "-q", "--no-out-link", "--store", sk_uri]
    storekit_s = _timed([*sk_argv, "--builders", machine, "--max-jobs", "0", *drvs], sk_env)
    _wipe(Path(store_dir), far)

    nix_root = work / "client-nix"
    nix_env = {**base, "HOME": str(nix_root / "home")}
    nix_uri = _client_uri(store_dir, nix_root)
    drvs = _instantiate(nix_uri, expr, wide, nix_env)
    nix_argv = ["nix-store", "--store", nix_uri, "--realise", "-j0", "--builders", machine, *drvs]
    nix_s = _timed(nix_argv, nix_env)
    note = f"per drv: storekit {1000 * storekit_s / wide:.0f} ms, nix {1000 * nix_s / wide:.0f} ms"
    return Row(f"{wide} independent drvs on 1 builder x 2 slots", storekit_s, "nix --builders", nix_s, note)
