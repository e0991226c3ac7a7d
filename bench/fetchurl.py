"""`builtin:fetchurl`: one large download from a server on 127.0.0.1, storekit vs Nix 2.8.

Real Nix instantiates `<nix/fetchurl.nix>` for the file (flat, and `unpack = true` of a `.nar.xz`)
in a fresh store per run; storekit builds the `.drv` with `storekit build` (its own download, then
the fixed-output checks: NAR hash, reference scan, content hash), Nix with `nix-store --realise` and
`sandbox = true` (curl in its fixed-output sandbox). Best of 3 runs each; the server is Python's
http.server in a thread, the same for both.
"""

from __future__ import annotations

import contextlib
import http.server
import lzma
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from bench._harness import Row, storekit_argv, storekit_env, work_dir
from storekit.hashing import Hash
from storekit.nar.fs import dump_path, hash_path

TITLE = "builtin:fetchurl from 127.0.0.1 (vs Nix 2.8's, sandboxed)"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serve(root: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["NIX_CONFIG"] = (
        "experimental-features = nix-command\nsandbox = true\nbuild-users-group =\nsubstituters ="
    )
    env["HOME"] = str(root / "home")
    env["XDG_CACHE_HOME"] = str(root / "cache")
    return env


def _uri(root: Path) -> str:
    return f"local?store={root / 'store'}&state={root / 'var/nix'}&log={root / 'var/log/nix'}"


def _instantiate(root: Path, expr: Path) -> str:
    argv = ["nix-instantiate", "--store", _uri(root), str(expr)]
    return subprocess.run(argv, capture_output=True, text=True, env=_env(root), check=True).stdout.strip()


def _case(work: Path, expr: Path) -> tuple[float, float]:
    ours, nix = float("inf"), float("inf")
    for i in range(3):
        a, b = work / f"{expr.stem}-{i}-sk", work / f"{expr.stem}-{i}-nix"
        drv_a, drv_b = _instantiate(a, expr), _instantiate(b, expr)
        sk = [*storekit_argv(), "build", "-q", "--no-out-link", "--store", _uri(a), drv_a]
        t0 = time.perf_counter()
        subprocess.run(sk, check=True, capture_output=True, env=storekit_env())
        ours = min(ours, time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run(
            ["nix-store", "--store", _uri(b), "--realise", drv_b],
            check=True,
            capture_output=True,
            env=_env(b),
        )
        nix = min(nix, time.perf_counter() - t0)
        for d in (a, b):
            subprocess.run(["chmod", "-R", "u+w", str(d)], check=False)
            shutil.rmtree(d, ignore_errors=True)
    return ours, nix


def run(quick: bool) -> list[Row]:
    size = (16 if quick else 128) << 20
    work = work_dir("bench-fetchurl-")
    srv = work / "srv"
    srv.mkdir()
    data = os.urandom(1 << 20) * (size >> 20)
    (srv / "big.bin").write_bytes(data)
    tree = work / "tree"
    tree.mkdir()
    for n in range(64):
        (tree / f"f{n}").write_bytes(data[: size // 256])
    nar = b"".join(dump_path(tree))
    (srv / "tree.nar.xz").write_bytes(lzma.compress(nar, preset=0))
    rows = []
    with _serve(srv) as url:
        flat = work / "flat.nix"
        flat.write_text(
            f'import <nix/fetchurl.nix> {{ url = "{url}/big.bin"; hash = "{Hash.of(data).sri}"; }}'
        )
        unpack = work / "unpack.nix"
        unpack.write_text(
            f'import <nix/fetchurl.nix> {{ url = "{url}/tree.nar.xz"; unpack = true; '
            f'hash = "{hash_path(tree)[0].sri}"; }}'
        )
        ours, nix = _case(work, flat)
        rows.append(Row(f"fetch {size >> 20} MiB file", ours, "nix-store --realise", nix))
        ours, nix = _case(work, unpack)
        rows.append(Row(f"fetch + unpack {len(nar) >> 20} MiB .nar.xz", ours, "nix-store --realise", nix))
    return rows
