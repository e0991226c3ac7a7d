"""Sandboxed builds: a chain of 20 trivial derivations and 50 independent ones, storekit vs Nix 2.8.

Both sides build `.drv` files real Nix instantiated from the same expression (busybox as the builder,
added to each store as a source), each in its own fresh store under a temp dir: storekit with
`storekit build` (bubblewrap sandbox), Nix with `nix-store --realise` and `sandbox = true` (as root
with an empty `build-users-group`). What is measured is the per-derivation overhead: setting up the
sandbox, running a builder that does almost nothing, scanning, canonicalising and registering the
output. Each timing is the best of `REPEAT` runs, each on fresh stores (builds cannot be repeated in
place), the three taking turns in an order that rotates, so that a slow second on the shared machine
weighs on each side in turn rather than always on the same one. The stores are deleted only at the
end (`_harness.work_dir` says why).
storekit is timed twice: in-process (`storekit.realise.driver.build`, the per-derivation overhead) and
through the CLI, which adds starting Python and importing the CLI (the Start-up benchmark's figure).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench._harness import Row, storekit_argv, storekit_env, work_dir

REPEAT = 5
TITLE = "Sandboxed builds: chain of 20 and 50 independent trivial derivations (vs Nix 2.8 sandbox)"

EXPRESSION = r"""
{ bbdir, chain, wide }:
let
  bb = builtins.path { path = bbdir; name = "busybox"; };
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "${bb}/busybox";
    args = [ "sh" "-c" script ];
  };
  link = n: if n == 0 then mk "chain-0" "echo 0 > $out"
            else mk "chain-${toString n}" "echo ${link (n - 1)} > $out";
in {
  chain = link (chain - 1);
  wide = builtins.genList (i: mk "wide-${toString i}" "echo ${toString i} > $out") wide;
}
"""


def _nix_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["NIX_CONFIG"] = "\n".join(
        [
            "experimental-features = nix-command",
            "sandbox = true",
            "build-users-group =",
            "substituters =",
        ]
    )
    env["HOME"] = str(root / "home")
    env["XDG_CACHE_HOME"] = str(root / "cache")
    return env


def _uri(root: Path) -> str:
    return f"local?store={root / 'store'}&state={root / 'var/nix'}&log={root / 'var/log/nix'}"


def _instantiate(root: Path, expr: Path, attr: str, chain: int, wide: int) -> list[str]:
    argv = ["nix-instantiate", "--store", _uri(root), str(expr / "default.nix"), "-A", attr]
    argv += ["--arg", "bbdir", str(expr / "bbdir"), "--arg", "chain", str(chain), "--arg", "wide", str(wide)]
    out = subprocess.run(argv, capture_output=True, text=True, env=_nix_env(root), check=True)
    return out.stdout.split()


def _timed(fn: Callable[..., object], *args: object, **kw: object) -> float:
    t0 = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t0


def _storekit_in_process(root: Path, drvs: list[str], jobs: int) -> None:
    from storekit.realise.driver import build
    from storekit.realise.runner import BuildOptions
    from storekit.store.open import open_store
    from storekit.store.specs import parse_store_spec

    with open_store(parse_store_spec(_uri(root))) as store:
        targets = [(store.parse_path(d), None) for d in drvs]
        _, report = build(store, targets, BuildOptions(cores=os.cpu_count() or 1), jobs=jobs)  # type: ignore[arg-type]
        assert report.ok, report.error()


def _run_one(kind: str, root: Path, drvs: list[str], jobs: int) -> float:
    """One fresh-store build: `cli` (the installed `storekit build`), `lib` (in-process) or `nix`."""
    if kind == "lib":
        return _timed(_storekit_in_process, root, drvs, jobs)
    if kind == "cli":
        argv = [*storekit_argv(), "build", "-q", "--no-out-link", "-j", str(jobs), "--store", _uri(root)]
        return _timed(subprocess.run, [*argv, *drvs], check=True, env=storekit_env(), capture_output=True)
    realise = ["nix-store", "--store", _uri(root), "--realise", "-j", str(jobs), *drvs]
    return _timed(subprocess.run, realise, check=True, env=_nix_env(root), capture_output=True)


def _case(work: Path, expr: Path, attr: str, jobs: int, sizes: tuple[int, int]) -> tuple[float, float, float]:
    """Best of `REPEAT` fresh-store builds of `attr`: storekit CLI, storekit in-process, Nix."""
    kinds = ["cli", "lib", "nix"]
    best = dict.fromkeys(kinds, float("inf"))
    for i in range(REPEAT):
        roots = {kind: work / f"{attr}-{jobs}-{i}-{kind}" for kind in kinds}
        drvs = {kind: _instantiate(root, expr, attr, *sizes) for kind, root in roots.items()}
        for kind in kinds[i % 3 :] + kinds[: i % 3]:
            best[kind] = min(best[kind], _run_one(kind, roots[kind], drvs[kind], jobs))
    return best["cli"], best["lib"], best["nix"]


def run(quick: bool) -> list[Row]:
    chain, wide = (5, 10) if quick else (20, 50)
    rows = []
    work = work_dir("bench-build-")
    expr = work / "expr"
    (expr / "bbdir").mkdir(parents=True)
    shutil.copy("/bin/busybox", expr / "bbdir" / "busybox")
    (expr / "default.nix").write_text(EXPRESSION)
    for task, attr, jobs, n in (
        (f"chain of {chain} drvs (-j1)", "chain", 1, chain),
        (f"{wide} independent drvs (-j1)", "wide", 1, wide),
        (f"{wide} independent drvs (-j2)", "wide", 2, wide),
    ):
        cli, lib, nix = _case(work, expr, attr, jobs, (chain, wide))
        per = f"per drv: storekit {1000 * lib / n:.0f} ms, nix {1000 * nix / n:.0f} ms"
        rows.append(Row(f"{task} in-process", lib, "nix-store --realise", nix, per))
        rows.append(Row(f"{task} CLI", cli, "nix-store --realise", nix, "incl. start-up (see Start-up)"))
    return rows
