"""Substituting many small paths over HTTP against `nix copy` (Nix 2.8), both from the same servers.

A closure of 1,000 small paths (`--quick`: 100): 20 layers of text files, each referring to two of
the layer below (every path of a layer is referred to), so the closure is discovered a layer at a
time as Nix's is. It is pushed once to a `file://` cache (xz, as Nix writes by default) that a real
nginx (Debian's) serves on 127.0.0.1, and the store itself is served by `storekit cache serve`.
Each run substitutes the whole closure into a new, empty local store: `storekit copy --from
http://…` against `nix copy --from http://…`, both as commands (start-up included), signatures not
checked by either, Nix's narinfo disk cache emptied before each of its runs. Each row is the median
of `REPEAT` runs, alternating the tools: the machine is shared, so single runs vary. This is where
Nix is slow (NixOS/nix#5118): a request per narinfo and per NAR, and the narinfos of a layer fetched
before the next layer is known.

Each run goes into a store of its own, and all are deleted at the end, not between runs
(`_harness.work_dir` says why: with the old harness, one `storekit copy` went from 0.15 s to 1.7 s of
system time over eight runs).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._harness import Row, run_cmd, storekit_argv, storekit_env, work_dir
from storekit.store.canonical import delete_path
from storekit.store.local import LocalStore
from storekit.store.open import open_store
from storekit.store.specs import local_spec_for
from storekit.storepath import StorePath
from storekit.transfer.copy import copy_closure

TITLE = "HTTP caches: substitute a closure of many small paths vs nix copy (same server)"
REPEAT = 5
LAYERS = 20
NIX_CONFIG = "experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n"
NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    types {{ text/x-nix-narinfo narinfo; application/x-nix-nar nar xz zst; }}
    server {{
        listen 127.0.0.1:{port};
        root {cache};
        location / {{ try_files $uri =404; }}
    }}
}}
"""


def run(quick: bool) -> list[Row]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx) or not shutil.which("nix"):
        print("skipped: needs nginx and nix (Debian's nginx-light and nix-bin)")
        return []
    tmp = work_dir("storekit-bench-http-")
    bench = _Bench(tmp, 100 if quick else 1000)
    what = f"{bench.count} small paths"
    rows = []
    with bench.nginx(nginx) as url:
        rows.append(bench.row(f"substitute {what} from nginx", url))
    with bench.cache_serve() as url:
        rows.append(bench.row(f"substitute {what} from cache serve", url))
    return rows


class _Bench:
    def __init__(self, tmp: Path, count: int) -> None:
        self.tmp, self.count = tmp, count
        self.rows = 0
        self.store_dir = str(tmp / "nix" / "store")
        self.state_dir = str(tmp / "nix" / "var" / "nix")
        self.env = dict(
            storekit_env(),
            NIX_CONFIG=NIX_CONFIG + "require-sigs = false\n",
            NIX_STORE_DIR=self.store_dir,
            NIX_STATE_DIR=self.state_dir,
            NIX_LOG_DIR=str(tmp / "nix" / "var" / "log" / "nix"),
            HOME=str(tmp / "home"),
            XDG_CACHE_HOME=str(tmp / "xdg"),
        )
        self.root = self._make_closure()
        self.cache = tmp / "cache"
        with (
            LocalStore(local_spec_for(self.store_dir, state_dir=self.state_dir)) as src,
            open_store(f"file://{self.cache}?store={self.store_dir}") as dst,
        ):
            copy_closure(src, dst, [self.root], jobs=4)

    def _make_closure(self) -> StorePath:
        """`count` text paths in `LAYERS` layers, each referring to two paths of the layer below."""
        rng = random.Random(19)
        per = max(1, (self.count - 1) // LAYERS)
        with LocalStore(local_spec_for(self.store_dir, state_dir=self.state_dir)) as store:
            below: list[StorePath] = []
            made = 0
            for layer in range(LAYERS):
                here = []
                for i in range(per if layer < LAYERS - 1 else self.count - 1 - made):
                    refs = {below[(2 * i + k) % len(below)] for k in range(2)} if below else set()
                    text = f"{layer}-{i} {rng.randbytes(200).hex()}\n".encode()
                    here.append(store.add_text(f"small-{layer}-{i}", text, refs))
                made += len(here)
                below = here or below
            return store.add_text("root", b"root\n", below)

    @contextmanager
    def nginx(self, binary: str) -> Iterator[str]:
        root, port = self.tmp / "nginx", _free_port()
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        conf = root / "nginx.conf"
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(user + NGINX_CONF.format(root=root, port=port, cache=self.cache))
        argv = [binary, "-c", str(conf), "-p", str(root), "-e", str(root / "error.log")]
        with _server(argv, port, self.env) as url:
            yield url

    @contextmanager
    def cache_serve(self) -> Iterator[str]:
        port = _free_port()
        store = f"local?store={self.store_dir}&state={self.state_dir}"
        argv = [*storekit_argv(), "cache", "serve", "--store", store, "-p", str(port)]
        with _server(argv, port, self.env) as url:
            yield url

    def row(self, task: str, url: str) -> Row:
        self.rows += 1
        runs = self.tmp / "runs" / str(self.rows)  # kept to the end (see the module's docstring)
        ours, theirs = [], []
        for n in range(REPEAT):
            ours.append(self._timed(self._argv("storekit", url, runs / f"storekit-{n}")))
            nix = self._argv("nix", url, runs / f"nix-{n}")
            theirs.append(self._timed(nix, stderr=subprocess.DEVNULL))
        med = statistics.median
        note = f"median of {REPEAT}; runs {_spread(ours)} vs {_spread(theirs)}"
        return Row(task, med(ours), "nix copy", med(theirs), note)

    def _argv(self, tool: str, url: str, target: Path) -> list[str]:
        """`tool`'s command substituting the closure from `url` into a new store at `target`."""
        dest = f"local?store={self.store_dir}&state={target}/var/nix&log={target}/var/log&real={target}/store"
        if tool == "nix":
            return ["nix", "copy", "--no-check-sigs", "--from", url, "--to", dest, str(self.root)]
        argv = [*storekit_argv(), "copy", "-q", "--no-check-sigs"]
        return [*argv, "--from", f"{url}?store={self.store_dir}", "--to", dest, str(self.root)]

    def _timed(self, argv: list[str], **kw: object) -> float:
        delete_path(str(self.tmp / "xdg"))  # Nix's narinfo disk cache: each run starts cold
        os.sync()
        t0 = time.perf_counter()
        run_cmd(argv, env=self.env, **kw)
        return time.perf_counter() - t0


@contextmanager
def _server(argv: list[str], port: int, env: dict[str, str]) -> Iterator[str]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start listening on 127.0.0.1:{port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spread(times: list[float]) -> str:
    return f"{min(times):.2f}-{max(times):.2f}s"
