"""`storekit cache serve` against nginx, both serving real Nix 2.8 on 127.0.0.1.

The same cache both ways: real Nix adds 500 small paths (1 KiB files) and one 200 MB path
(`--quick`: 100 and 20 MB) and copies them into a `file://` cache (uncompressed NARs), which nginx
serves. Real Nix then substitutes them (`nix copy --from URL`, into an empty store with an empty
narinfo disk cache) from nginx (the reference) and from storekit:

- a warm pull-through leaf (`cache serve --upstream nginx --cache-dir D`, already holding everything);
- a cold one (an empty cache dir: every path is fetched from nginx and verified first);
- `cache serve --store` of the Nix store itself (narinfos from its database, NARs made on the fly).

The client is the same real Nix every time, so a ratio near 1.00x means the server is not what
limits it. Each row is the median of `REPEAT` runs: the machine is shared, so single runs vary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench._harness import Row, storekit_argv, storekit_env, work_dir

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from nginx_server import Nginx, nginx_serving
from nixoracle import make_nix_store, nix_available

TITLE = "cache serve (127.0.0.1): real Nix substituting from storekit vs from nginx"
REPEAT = 3


def run(quick: bool) -> list[Row]:
    if not nix_available() or not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        print("skipped: needs real Nix (nix-bin) and nginx")
        return []
    tmp = work_dir("storekit-bench-serve-")
    bench = _Bench(tmp)
    small = bench.paths("small", 100 if quick else 500, 1024)
    big = bench.paths("big", 1, (20 if quick else 200) << 20)
    with nginx_serving(bench.cache, bench.tmp / "nginx") as origin:
        return [
            *bench.rows(origin, small, f"{len(small)} x 1 KiB paths"),
            *bench.rows(origin, big, f"one {(20 if quick else 200)} MB path"),
        ]


class _Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.nix = make_nix_store(tmp / "nix")
        self.cache = tmp / "cache"
        self.runs = 0

    def paths(self, kind: str, count: int, size: int) -> list[str]:
        """`count` paths of `size` random bytes added by real Nix, and copied into the file:// cache."""
        src = self.tmp / f"src-{kind}"
        src.mkdir()
        for i in range(count):
            (src / f"{kind}-{i}").write_bytes(os.urandom(size))
        files = [str(p) for p in sorted(src.iterdir())]
        paths = self.nix.text("nix-store", "--add", *files).split()
        uri = f"file://{self.cache}?store={self.nix.store_dir}&compression=none"
        self.nix.run("nix", "copy", "--to", uri, *paths)
        return paths

    def rows(self, origin: Nginx, paths: list[str], what: str) -> list[Row]:
        reference = self.median(lambda: self.substitute(origin.url, paths))
        rows = []
        with self.serve("--upstream", origin.url, "--cache-dir", str(self.tmp / "warm")) as leaf:
            self.substitute(leaf, paths)  # fills the leaf
            warm = self.median(lambda: self.substitute(leaf, paths))
        rows.append(Row(f"{what}: warm pull-through leaf", warm, "nginx", reference))
        cold_dir = self.tmp / "cold"

        def cold() -> float:
            shutil.rmtree(cold_dir, ignore_errors=True)
            with self.serve("--upstream", origin.url, "--cache-dir", str(cold_dir)) as leaf:
                return self.substitute(leaf, paths)

        rows.append(Row(f"{what}: cold leaf (fetch, verify)", self.median(cold), "nginx", reference))
        with self.serve("--store", self.nix.uri) as served:
            store = self.median(lambda: self.substitute(served, paths))
        rows.append(Row(f"{what}: cache serve --store", store, "nginx", reference))
        return rows

    def median(self, fn: Callable[[], float]) -> float:
        return statistics.median(fn() for _ in range(REPEAT))

    def substitute(self, url: str, paths: list[str]) -> float:
        """Seconds real Nix takes to copy `paths` from `url` into an empty store (empty disk cache)."""
        self.runs += 1
        client = self.tmp / f"client-{self.runs}"
        store = f"local?store={self.nix.store_dir}&state={client}/var&real={client}/store"
        env = dict(self.nix.env(), XDG_CACHE_HOME=str(client / "cache"))
        argv = ["nix", "copy", "--no-check-sigs", "--from", f"{url}?store={self.nix.store_dir}"]
        started = time.perf_counter()
        subprocess.run([*argv, "--to", store, *paths], check=True, env=env, capture_output=True)
        elapsed = time.perf_counter() - started
        shutil.rmtree(client, ignore_errors=True)
        return elapsed

    @contextlib.contextmanager
    def serve(self, *args: str) -> Iterator[str]:
        argv = [*storekit_argv(), "cache", "serve", "--port", "0", "--no-check-sigs", *args]
        if "--store" in args:
            argv.remove("--no-check-sigs")
        env = storekit_env()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            assert " at http://" in line, line
            yield line.split(" at ")[1].strip()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
