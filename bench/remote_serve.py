"""Serving over ssh: real Nix pushes a closure to `storekit nix-store --serve` vs to `nix-store --serve`.

One client for both rows, real Nix 2.8 (`nix copy --to 'ssh://…?remote-program=…&remote-store=…'`),
through the same sshd on 127.0.0.1 (the tests' `sshd_server`, keys made for the run); only the far
side differs: storekit's serve command over a storekit store, or Nix's own `nix-store --serve --write`
over a Nix store, each time a fresh empty store with the same store dir as the client's. The closure
is ~600 MB (`--quick`: ~60 MB): a few large files of random bytes (the NAR stream, hashing and writing
dominate) and a tree of small files (per-entry cost), as `nix-store --add`ed paths referring to each
other through a text path. Each row is the median of `REPEAT` runs, the two servers taking turns
(the machine is shared, and its load changes).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from bench._harness import Row, work_dir

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from nixoracle import NIX_CONFIG, NixStore, nix_available
from sshd_server import Sshd, missing_tools

TITLE = "remote (ssh on 127.0.0.1): real Nix pushes a closure to a serve-protocol server"
REPEAT = 5
DEFAULT = True


def run(quick: bool) -> list[Row]:
    if missing_tools() or not nix_available():
        print("skipped: needs sshd and real Nix")
        return []
    root = work_dir("storekit-bench-remote-")
    sshd = Sshd(root / "sshd")
    sshd.start()
    try:
        return [_push_row(root, sshd, 60 if quick else 600)]
    finally:
        sshd.stop()


def _push_row(root: Path, sshd: Sshd, megabytes: int) -> Row:
    client = NixStore(root / "client", str(root / "client" / "store"))
    top = _closure(root, client, megabytes)
    env = sshd.env(client.env())
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join([venv_bin, "/usr/local/bin", "/usr/bin", "/bin"])
    ours = sshd.wrapper("bench-storekit", str(Path(venv_bin) / "storekit"), {"PATH": path})
    theirs = sshd.wrapper("bench-nix", shutil.which("nix-store") or "nix-store",
                          {"PATH": path, "NIX_CONFIG": NIX_CONFIG})  # fmt: skip
    programs = {"storekit": f"{ours} nix-store", "nix": str(theirs)}
    times: dict[str, list[float]] = {name: [] for name in programs}
    for i in range(REPEAT):  # interleaved, so a change in the machine's load hits both alike
        for name, program in programs.items():
            times[name].append(_push(root / f"far-{name}-{i}", sshd, client, env, top, program))
    storekit_s, nix_s = statistics.median(times["storekit"]), statistics.median(times["nix"])
    note = f"{megabytes} MB closure, nix copy --to ssh://"
    return Row(f"push {megabytes} MB closure (serve protocol)", storekit_s, "nix-store --serve", nix_s, note)


def _push(far: Path, sshd: Sshd, client: NixStore, env: dict[str, str], top: str, program: str) -> float:
    """One `nix copy --to` of `top`'s closure into a fresh far store; its wall time."""
    remote_store = f"local?store={client.store_dir}&real={far / 'store'}&state={far / 'var/nix'}"
    params = urllib.parse.urlencode({"remote-program": program, "remote-store": remote_store},
                                    quote_via=urllib.parse.quote)  # fmt: skip
    argv = ["nix", "copy", "--store", client.uri, "--to", f"ssh://{sshd.host}?{params}", top]
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, check=False, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr.decode()}")
    subprocess.run(["rm", "-rf", str(far)], check=True)
    return elapsed


def _closure(root: Path, client: NixStore, megabytes: int) -> str:
    """Large random files in a few paths, one tree of small files, tied together by a text path."""
    client.root.mkdir(parents=True, exist_ok=True)
    paths = []
    big = max(1, megabytes // 100)
    for i in range(big):
        d = root / "src" / f"big{i}"
        d.mkdir(parents=True)
        with open(d / "blob", "wb") as f:
            for _ in range(megabytes // big):
                f.write(os.urandom(1 << 20))
        paths.append(client.text("nix-store", "--add", str(d)))
    small = root / "src" / "small"
    for i in range(2000):
        sub = small / f"d{i % 50}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}").write_bytes(os.urandom(512))
    paths.append(client.text("nix-store", "--add", str(small)))
    text = root / "src" / "closure.nix"
    refs = " ".join(f'(builtins.storePath "{p}")' for p in paths)
    text.write_text(f'builtins.toFile "closure" (toString [ {refs} ])')
    return _top(client, text)


def _top(client: NixStore, expr: Path) -> str:
    """`builtins.toFile` writes the text path during evaluation; its path is the evaluated string."""
    out = client.text("nix-instantiate", "--eval", "--read-write-mode", str(expr))
    return out.strip('"')
