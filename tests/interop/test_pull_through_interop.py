"""A three-level cache hierarchy served to real Nix 2.8: nginx (origin) <- middle <- leaf.

The origin is Debian's nginx serving a `file://` cache that real Nix wrote and signed; middle and
leaf are `storekit cache serve --upstream … --cache-dir …` processes, the leaf listing the middle
first and the origin second. Real Nix substitutes from the leaf (`nix copy --from`, then
`nix-store -r` with `--option substituters`) with `require-sigs` and only the origin's key trusted.
Requests are counted in nginx's access log: a second client of the leaf adds none, and once the
middle is killed the leaf falls over to the origin itself. Real Nix then reads the leaf's cache dir
as a `file://` cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from cache_helpers import build_closure, fresh_nix_store, nix_key, nix_on
from nginx_server import Nginx, nginx_serving
from nixoracle import NixStore

from storekit.storepath import StorePath

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parent.parent.parent


@contextmanager
def cache_serve(tmp_path: Path, name: str, *args: str) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`storekit cache serve ARGS` as a process: (its URL, the process, its stderr log file)."""
    log = tmp_path / f"{name}.log"
    argv = [sys.executable, "-m", "storekit", "cache", "serve", "--port", "0", "--log-requests", *args]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env, cwd=REPO)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert " at http://127.0.0.1:" in line, log.read_text()
        yield line.split(" at ")[1].strip(), proc, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def substitute(
    nix_store: NixStore, tmp_path: Path, client: str, leaf: str, public: str, top: StorePath
) -> None:
    """A fresh client (its own store and narinfo disk cache) copies `top`'s closure from the leaf."""
    target = fresh_nix_store(tmp_path / client, nix_store.store_dir)
    strict = ("--option", "require-sigs", "true", "--option", "trusted-public-keys", public)
    argv = [
        "nix",
        "copy",
        "--store",
        target,
        *strict,
        "--from",
        f"{leaf}?store={nix_store.store_dir}",
        str(top),
    ]
    env = dict(nix_store.env(), XDG_CACHE_HOME=str(tmp_path / client / "cache"))
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    nix_on(nix_store, target, "nix-store", "--verify", "--check-contents")
    got = nix_on(nix_store, target, "nix-store", "-qR", str(top)).stdout.split()
    assert set(got) == set(nix_store.text("nix-store", "-qR", str(top)).split())


def narinfo_hits(origin: Nginx, path: StorePath) -> int:
    return sum(f"/{path.hash_part}.narinfo " in r for r in origin.requests())


def test_nix_substitutes_through_a_three_level_hierarchy(nix_store: NixStore, tmp_path: Path) -> None:
    top, late = build_closure(nix_store, "one"), build_closure(nix_store, "two")
    key_file, public = nix_key(nix_store, tmp_path, "origin-1")
    served = tmp_path / "served"
    for path in (top, late):
        nix_store.run("nix", "store", "sign", "--key-file", str(key_file), "--recursive", str(path))
        nix_store.run("nix", "copy", "--to", f"file://{served}?store={nix_store.store_dir}", str(path))
    trust = ("--trusted-public-keys", public)
    with ExitStack() as stack:
        origin = stack.enter_context(nginx_serving(served, tmp_path / "nginx"))
        middle, middle_proc, _ = stack.enter_context(
            cache_serve(
                tmp_path, "middle", "--upstream", origin.url, "--cache-dir", str(tmp_path / "m"), *trust
            )
        )
        upstreams = ("--upstream", middle, "--upstream", origin.url, "--timeout", "5")
        leaf, _, leaf_log = stack.enter_context(
            cache_serve(tmp_path, "leaf", *upstreams, "--cache-dir", str(tmp_path / "l"), *trust)
        )
        substitute(nix_store, tmp_path, "client1", leaf, public, top)
        assert narinfo_hits(origin, top) == 1  # the middle asked; the leaf had no need
        seen = origin.requests()
        substitute(nix_store, tmp_path, "client2", leaf, public, top)
        assert origin.requests() == seen  # the second client cost the origin nothing

        middle_proc.kill()
        middle_proc.wait(timeout=10)
        target = fresh_nix_store(tmp_path / "client3", nix_store.store_dir)
        options = ["--option", "substituters", f"{leaf}?store={nix_store.store_dir}"]
        options += ["--option", "trusted-public-keys", public]
        nix_on(nix_store, target, "nix-store", "-r", str(late), *options)
        nix_on(nix_store, target, "nix-store", "--verify", "--check-contents")
        assert narinfo_hits(origin, late) == 1  # asked by the leaf itself
        text = leaf_log.read_text()
        assert f"upstream '{middle}' dropped for {late.hash_part}.narinfo: cannot reach" in text, text
    # the leaf's cache dir is a plain binary cache: real Nix reads it as file://
    substitute(nix_store, tmp_path, "client4", f"file://{tmp_path / 'l'}", public, late)
