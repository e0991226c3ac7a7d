"""Content-addressed builds: a chain of CA derivations, then the early cutoff, storekit vs Nix 2.8.

Real Nix instantiates a chain of floating CA derivations (each refers to the one before it; busybox is
the builder) for a fresh store per side and run; storekit builds it with `storekit build`, Nix with
`nix-store --realise` (`ca-derivations` on, sandbox on). Then the first derivation's comment changes:
both rebuild it and resolve every other one to a derivation already realised (the early cutoff),
so the second row measures resolution and realisation lookups rather than builders. Best of
`REPEAT`, the tools taking turns, each going first every other time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench._harness import Row, storekit_argv, storekit_env, work_dir

REPEAT = 5
TITLE = "Content-addressed builds: a chain, then the early cutoff (vs Nix 2.8, ca-derivations)"

EXPRESSION = r"""
{ bbdir, n, comment }:
let
  bb = builtins.path { path = bbdir; name = "busybox"; };
  ca = { __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256"; };
  mk = name: script: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = "${bb}/busybox";
    args = [ "sh" "-c" script ];
  } // ca);
  link = i: if i == 0 then mk "ca-0" "# ${comment}\necho 0 > $out"
            else mk "ca-${toString i}" "echo ${link (i - 1)} > $out";
in link (n - 1)
"""


def _env(root: Path) -> dict[str, str]:
    config = ["experimental-features = nix-command ca-derivations", "sandbox = true", "build-users-group ="]
    config.append("substituters =")
    env = {**os.environ, "NIX_CONFIG": "\n".join(config), "HOME": str(root / "home")}
    return storekit_env(env)


def _uri(root: Path) -> str:
    return f"local?store={root / 'store'}&state={root / 'var/nix'}&log={root / 'var/log/nix'}"


def _instantiate(root: Path, expr: Path, n: int, comment: str) -> str:
    argv = ["nix-instantiate", "--store", _uri(root), str(expr / "default.nix"), "--arg", "n", str(n)]
    argv += ["--arg", "bbdir", str(expr / "bbdir"), "--argstr", "comment", comment]
    return subprocess.run(argv, capture_output=True, text=True, env=_env(root), check=True).stdout.strip()


def _build(root: Path, drv: str, tool: str) -> float:
    if tool == "storekit":
        argv = [*storekit_argv(), "build", "-q", "--no-out-link", "--store", _uri(root), drv]
    else:
        argv = ["nix-store", "--store", _uri(root), "--realise", drv]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=_env(root), capture_output=True)
    return time.perf_counter() - t0


def _case(work: Path, expr: Path, n: int, tool: str, i: int) -> tuple[float, float]:
    root = work / f"{tool}-{i}"
    first = _build(root, _instantiate(root, expr, n, "one"), tool)
    cutoff = _build(root, _instantiate(root, expr, n, "two"), tool)
    return first, cutoff  # the store stays to the end (`_harness.work_dir` says why)


def _best(work: Path, expr: Path, n: int) -> dict[str, tuple[float, float]]:
    """Best of `REPEAT` per tool and row, the tools taking turns: the machine is shared, and a slow
    minute then weighs on both sides rather than on whichever ran during it."""
    best = {tool: (float("inf"), float("inf")) for tool in ("storekit", "nix")}
    for i in range(REPEAT):
        for tool in ("storekit", "nix") if i % 2 == 0 else ("nix", "storekit"):
            first, cutoff = _case(work, expr, n, tool, i)
            best[tool] = (min(best[tool][0], first), min(best[tool][1], cutoff))
    return best


def run(quick: bool) -> list[Row]:
    n = 5 if quick else 20
    work = work_dir("bench-ca-")
    expr = work / "expr"
    (expr / "bbdir").mkdir(parents=True)
    shutil.copy("/bin/busybox", expr / "bbdir" / "busybox")
    (expr / "default.nix").write_text(EXPRESSION)
    best = _best(work, expr, n)
    (sk_first, sk_cut), (nix_first, nix_cut) = best["storekit"], best["nix"]
    nix = "nix-store --realise"
    return [
        Row(f"chain of {n} CA drvs, built", sk_first, nix, nix_first, "CLI, incl. start-up"),
        Row(f"chain of {n}: first changed, cutoff", sk_cut, nix, nix_cut, "1 builder runs"),
    ]
