"""A command's fixed cost: `storekit --version`, `storekit hash path` of one small file and `storekit
build` of a derivation that is built already, vs Nix 2.8.

Every CLI row of the other benchmarks includes this cost once per command, so it is measured alone
here: starting Python and importing what the command needs (for a plain `hash path` line: no typer,
see `cli/_fast.py`, only the NAR hasher and the few standard modules it stands on; no `dataclasses`,
`typing`, `re` or OpenSSL, tests/cli/test_cli_fast_imports.py) against starting `nix`. The two tools
run alternately, so a busy machine slows both alike; each figure is the best of the runs. storekit
runs as the other rows run it, `python -m storekit` with this checkout first on the path.

The build row is what every CLI row of `python -m bench build` pays once, apart from building: a
plain `build` line (no typer, see `cli/_build_line.py`), the build machinery's imports, opening the
store and planning, against `nix-store --realise` of the same valid `.drv` in the same store.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench._harness import Row, storekit_argv, storekit_env, work_dir
from bench.build import EXPRESSION, _instantiate, _nix_env, _uri

TITLE = "Start-up: a command's fixed cost (vs Nix 2.8)"


def _once(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(list(argv), env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def _pair(ours: list[str], theirs: list[str], env: dict[str, str], runs: int) -> tuple[Row, str]:
    """Best of `runs` for each command, run alternately (one warm-up each, not counted).

    The note gives the CPU time too: on a busy machine it moves much less than the wall time.
    """
    _once(ours, env), _once(theirs, env)
    mine, ref = [], []
    for _ in range(runs):
        mine.append(_once(ours, env))
        ref.append(_once(theirs, env))
    cpu = f"CPU {1000 * min(c for _, c in mine):.0f} ms vs {1000 * min(c for _, c in ref):.0f} ms"
    return Row(
        "",
        min(w for w, _ in mine),
        " ".join(theirs[:-1] if len(theirs) > 2 else theirs),
        min(w for w, _ in ref),
    ), cpu


def run(quick: bool) -> list[Row]:
    runs = 5 if quick else 20
    storekit = list(storekit_argv())
    tmp = str(work_dir("bench-startup-"))
    env = {
        **storekit_env(),
        "NIX_CONFIG": "experimental-features = nix-command",
        "NIX_STATE_DIR": f"{tmp}/var",
        "NIX_LOG_DIR": f"{tmp}/log",
        "HOME": tmp,
    }
    small = Path(tmp) / "hello.txt"
    small.write_text("hello\n")
    version, v_cpu = _pair([*storekit, "--version"], ["nix", "--version"], env, runs)
    hashed, h_cpu = _pair(
        [*storekit, "hash", "path", str(small)], ["nix", "hash", "path", str(small)], env, runs
    )
    built, b_cpu = _build_pair(Path(tmp), storekit, env, runs)
    return [
        replace(version, task="--version", note=f"best of {runs}, alternating; {v_cpu}"),
        replace(
            hashed,
            task="hash path of a 6-byte file",
            note=f"{h_cpu}; no typer (cli/_fast.py): Python and the NAR hasher",
        ),
        replace(
            built,
            task="build of a built .drv (nothing to do)",
            reference="nix-store --realise",
            note=f"{b_cpu}; no typer (cli/_build_line.py)",
        ),
    ]


def _build_pair(tmp: Path, storekit: list[str], env: dict[str, str], runs: int) -> tuple[Row, str]:
    """`storekit build` and `nix-store --realise` of one derivation Nix built in the store they share."""
    expr = tmp / "expr"
    (expr / "bbdir").mkdir(parents=True)
    shutil.copy("/bin/busybox", expr / "bbdir" / "busybox")
    (expr / "default.nix").write_text(EXPRESSION)
    root = tmp / "build"
    (drv,) = _instantiate(root, expr, "chain", 1, 0)
    nix_env = storekit_env(_nix_env(root))
    realise = ["nix-store", "--store", _uri(root), "--realise", drv]
    subprocess.run(realise, env=nix_env, check=True, capture_output=True)
    ours = [*storekit, "build", "-q", "--no-out-link", "--store", _uri(root), drv]
    return _pair(ours, [*realise[:4], drv], nix_env, runs)
