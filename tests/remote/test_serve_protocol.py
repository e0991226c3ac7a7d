"""`storekit nix-store --serve` byte for byte against real `nix-store --serve`, and its faults.

A client made of storekit's wire encoders sends the same commands to both servers over the same
store (real Nix made it; storekit reads Nix's database), and the answers must be the same bytes. Then
the faults: a connection dropped in the middle of a NAR leaves nothing (and a retry works), a NAR
whose hash differs is refused naming both hashes, a path of another store dir is refused naming both
store dirs, a client speaking another protocol version or no serve protocol gets a one-line error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from nixoracle import NixStore

from storekit.derivation.fs import read_derivation
from storekit.hashing import Hash
from storekit.nar.fs import dump_path
from storekit.storepath import StoreDir
from storekit.wire.framing import WireReader, WireWriter
from storekit.wire.serve import (
    SERVE_MAGIC_1,
    SERVE_MAGIC_2,
    ServeCommand,
    read_build_result,
    write_basic_derivation,
)
from storekit.wire.values import BuildResult, BuildStatus

pytestmark = pytest.mark.interop

V27 = 0x207


def greeting(version: int = V27) -> WireWriter:
    return WireWriter().u64(SERVE_MAGIC_1).u64(version)


def storekit_serve(uri: str) -> list[str]:
    return [sys.executable, "-m", "storekit", "nix-store", "--serve", "--write", "--store", uri]


def nix_serve(uri: str) -> list[str]:
    return ["nix-store", "--serve", "--write", "--store", uri]


def exchange(argv: list[str], request: bytes, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=request, capture_output=True, env=env, check=False, timeout=120)


@pytest.fixture
def populated(nix_store: NixStore, tmp_path: Path) -> tuple[NixStore, dict[str, str]]:
    """A Nix store holding a source path, a text path referring to it, and a built derivation."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("hello\n")
    (src / "x").write_bytes(os.urandom(100_000))
    source = nix_store.text("nix-store", "--add", str(src))
    (tmp_path / "e.nix").write_text(
        f'derivation {{ name = "d"; system = "x86_64-linux"; builder = "/bin/sh"; '
        f'args = [ "-c" "echo ${{builtins.storePath "{source}"}} > $out" ]; }}'
    )
    drv = nix_store.text("nix-instantiate", str(tmp_path / "e.nix"))
    out = nix_store.text("nix-store", "--realise", drv)
    return nix_store, {"source": source, "drv": drv, "out": out}


def test_answers_are_nix_store_serves_bytes(populated: tuple[NixStore, dict[str, str]]) -> None:
    store, p = populated
    missing = p["source"].replace(os.path.basename(p["source"])[:4], "0000")
    w = greeting()
    w.u64(ServeCommand.QueryValidPaths).bool(False).bool(False).strings([p["out"], missing, p["source"]])
    w.u64(ServeCommand.QueryPathInfos).strings([p["out"], missing, p["source"], p["drv"]])
    w.u64(ServeCommand.QueryClosure).bool(False).strings([p["out"]])
    w.u64(ServeCommand.QueryClosure).bool(True).strings([p["drv"]])
    w.u64(ServeCommand.DumpStorePath).string(p["source"])
    w.u64(ServeCommand.ExportPaths).u64(0).strings([p["out"], p["source"]])
    request = w.getvalue()
    nix = exchange(nix_serve(store.uri), request, store.env())
    ours = exchange(storekit_serve(store.uri), request, store.env())
    assert nix.returncode == 0, nix.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout[:16] == WireWriter().u64(SERVE_MAGIC_2).u64(V27).getvalue()
    assert len(ours.stdout) > 100_000
    assert ours.stdout == nix.stdout


def add_request(
    store_dir: str, src: Path, *, nar_hash: Hash | None = None, cut: int = 0
) -> tuple[str, bytes]:
    """An `AddToStoreNar` of `src` as a source path (the NAR cut short by `cut` bytes)."""
    nar = b"".join(dump_path(src))
    real = Hash.of(nar)
    path = StoreDir(store_dir).make_source_path(src.name, real)
    w = greeting().u64(ServeCommand.AddToStoreNar).string(str(path)).string("")
    w.string((nar_hash or real).base16).strings([]).u64(0).u64(len(nar)).bool(False).strings([]).string("")
    return str(path), w.getvalue() + nar[: len(nar) - cut]


def storekit_store(tmp_path: Path, store_dir: str) -> str:
    far = tmp_path / "far"
    return f"local?store={store_dir}&real={far / 'store'}&state={far / 'var/nix'}"


def is_valid(store: NixStore, uri: str, path: str) -> bool:
    argv = ["nix-store", "--store", uri, "--check-validity", path]
    return subprocess.run(argv, env=store.env(), capture_output=True, check=False).returncode == 0


def test_a_dropped_connection_leaves_nothing_and_a_retry_works(nix_store: NixStore, tmp_path: Path) -> None:
    src = tmp_path / "payload"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(3 << 20))
    uri = storekit_store(tmp_path, nix_store.store_dir)
    path, request = add_request(nix_store.store_dir, src, cut=1 << 20)
    dropped = exchange(storekit_serve(uri), request, nix_store.env())
    assert dropped.returncode == 1
    assert dropped.stderr.decode().startswith("error: ")
    assert not is_valid(nix_store, uri, path)
    assert set(os.listdir(tmp_path / "far" / "store")) <= {".links"}  # no half-written path or staging dir
    path2, request = add_request(nix_store.store_dir, src)
    done = exchange(storekit_serve(uri), request, nix_store.env())
    assert done.returncode == 0, done.stderr
    assert done.stdout[16:] == WireWriter().u64(1).getvalue()
    assert path2 == path and is_valid(nix_store, uri, path)
    verify = ["nix-store", "--store", uri, "--verify", "--check-contents"]
    subprocess.run(verify, env=nix_store.env(), check=True, capture_output=True)


def test_a_nar_with_another_hash_is_refused_naming_both(nix_store: NixStore, tmp_path: Path) -> None:
    src = tmp_path / "payload"
    src.mkdir()
    (src / "f").write_text("contents\n")
    wrong = Hash.of(b"something else")
    uri = storekit_store(tmp_path, nix_store.store_dir)
    path, request = add_request(nix_store.store_dir, src, nar_hash=wrong)
    done = exchange(storekit_serve(uri), request, nix_store.env())
    assert done.returncode == 1
    real = Hash.of(b"".join(dump_path(src)))
    message = done.stderr.decode()
    assert message.count("\n") == 1 and message.startswith("error: hash mismatch"), message
    assert str(wrong) in message, message
    assert str(real) in message, message
    assert not is_valid(nix_store, uri, path)


def test_a_path_of_another_store_dir_is_refused_naming_both(nix_store: NixStore, tmp_path: Path) -> None:
    uri = storekit_store(tmp_path, nix_store.store_dir)
    other = "/other/store/" + "a" * 32 + "-x"
    request = greeting().u64(ServeCommand.QueryValidPaths).bool(False).bool(False).strings([other]).getvalue()
    done = exchange(storekit_serve(uri), request, nix_store.env())
    assert done.returncode == 1
    message = done.stderr.decode()
    assert message.count("\n") == 1, message
    assert "'/other/store'" in message and f"'{nix_store.store_dir}'" in message, message


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (greeting(0x300).getvalue(), "unsupported serve protocol version 3.0"),
        (WireWriter().u64(0x12345678).u64(V27).getvalue(), "serve protocol mismatch"),
        (greeting().u64(99).getvalue(), "unknown serve command 99"),
    ],
    ids=["version", "magic", "command"],
)
def test_another_protocol_gets_one_line(
    nix_store: NixStore, tmp_path: Path, request_bytes: bytes, expected: str
) -> None:
    uri = storekit_store(tmp_path, nix_store.store_dir)
    done = exchange(storekit_serve(uri), request_bytes, nix_store.env())
    assert done.returncode == 1
    message = done.stderr.decode()
    assert message.count("\n") == 1 and message.startswith("error: ") and expected in message, message


def test_without_write_nothing_is_added(nix_store: NixStore, tmp_path: Path) -> None:
    src = tmp_path / "payload"
    src.mkdir()
    (src / "f").write_text("x\n")
    uri = storekit_store(tmp_path, nix_store.store_dir)
    path, request = add_request(nix_store.store_dir, src)
    argv = [a for a in storekit_serve(uri) if a != "--write"]
    done = exchange(argv, request, nix_store.env())
    assert done.returncode == 1
    assert "not allowed" in done.stderr.decode()
    assert not is_valid(nix_store, uri, path)


BUILDS = r"""
{ bbdir }:
let
  bb = builtins.path { path = bbdir; name = "busybox"; };
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "${bb}/busybox";
    args = [ "sh" "-e" "-c" script ];
  };
in {
  ok = mk "ok" "echo built-ok; echo ok > $out";
  fails = mk "fails" "echo about-to-fail; exit 3";
  hangs = mk "hangs" "echo now-hanging; $builder sleep 600";
}
"""


@pytest.fixture
def drvs(nix_store: NixStore, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "bbdir").mkdir()
    shutil.copy("/bin/busybox", tmp_path / "bbdir" / "busybox")
    (tmp_path / "b.nix").write_text(BUILDS)
    args = ["--arg", "bbdir", str(tmp_path / "bbdir")]
    return {
        a: nix_store.text("nix-instantiate", str(tmp_path / "b.nix"), "-A", a, *args)
        for a in ("ok", "fails", "hangs")
    }


def build_options(w: WireWriter, timeout: int = 0) -> WireWriter:
    """Serve 2.7's build settings: max silent time, timeout, log size, repeats, determinism, keep-failed."""
    return w.u64(0).u64(timeout).u64(0).u64(0).u64(0).bool(False)


def test_build_paths_builds_in_the_sandbox(nix_store: NixStore, drvs: dict[str, str]) -> None:
    w = greeting().u64(ServeCommand.BuildPaths).strings([f"{drvs['ok']}!out"])
    build_options(w).u64(ServeCommand.BuildPaths).strings([drvs["fails"]])
    done = exchange(storekit_serve(nix_store.uri), build_options(w).getvalue(), nix_store.env())
    assert done.returncode == 0, done.stderr
    r = WireReader(done.stdout[16:])
    assert r.u64() == 0  # built
    status = r.u64()
    assert status == BuildStatus.PermanentFailure, status
    assert "fails" in r.string()
    assert b"built-ok" in done.stderr and b"about-to-fail" in done.stderr  # the logs, as they came
    out = nix_store.text("nix-store", "-q", "--outputs", drvs["ok"])
    assert nix_store.text("nix-store", "-q", "--deriver", out) == drvs["ok"]
    nix_store.run("nix-store", "--verify-path", out)


def build_derivations(
    argv: list[str], env: dict[str, str], sd: StoreDir, builds: list[tuple[str, int]]
) -> tuple[list[BuildResult], bytes]:
    """`BuildDerivation` for each (.drv, timeout), answers read while the pipe stays open (a server
    that sees the client hang up kills the build, as Nix's does); the results and the server's stderr."""
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    w = greeting()
    for drv, timeout in builds:
        w.u64(ServeCommand.BuildDerivation)
        write_basic_derivation(w, sd.parse_path(drv), read_derivation(Path(drv)))
        build_options(w, timeout)
    proc.stdin.write(w.getvalue())
    proc.stdin.flush()
    r = WireReader(proc.stdout)
    assert (r.u64(), r.u64()) == (SERVE_MAGIC_2, V27)
    results = [read_build_result(r, sd, V27) for _ in builds]
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return results, err


def test_build_derivation_reports_failures_and_timeouts(nix_store: NixStore, drvs: dict[str, str]) -> None:
    """The build hook's command: a basic derivation; a failure is a status, and the session goes on."""
    sd = StoreDir(nix_store.store_dir)
    builds = [(drvs["ok"], 0), (drvs["fails"], 0), (drvs["hangs"], 2)]
    results, _ = build_derivations(storekit_serve(nix_store.uri), nix_store.env(), sd, builds)
    assert [x.status for x in results] == [
        BuildStatus.Built,
        BuildStatus.PermanentFailure,
        BuildStatus.TimedOut,
    ]
    assert "exit" in results[1].error_msg or "status" in results[1].error_msg, results[1].error_msg
    assert "timed out after 2 seconds" in results[2].error_msg
    assert results[0].times_built == 1 and results[0].start_time <= results[0].stop_time


def test_build_derivation_answers_as_nix_store_serve(
    nix_store: NixStore, drvs: dict[str, str], tmp_path: Path
) -> None:
    """The same derivation built by Nix's server and by storekit's, each in its own store of one store dir:
    the same result (times aside) with the same realisations, and the output has the same NAR hash."""
    sd = StoreDir(nix_store.store_dir)
    ours_uri = storekit_store(tmp_path, nix_store.store_dir)
    bb = os.path.dirname(read_derivation(Path(drvs["ok"])).builder)
    export = nix_store.run("nix-store", "--export", bb)
    request = greeting().u64(ServeCommand.ImportPaths).getvalue() + export
    subprocess.run(
        storekit_serve(ours_uri), input=request, env=nix_store.env(), check=True, capture_output=True
    )
    builds = [(drvs["ok"], 0), (drvs["ok"], 0)]
    nix, _ = build_derivations(nix_serve(nix_store.uri), nix_store.env(), sd, builds)
    ours, _ = build_derivations(storekit_serve(ours_uri), nix_store.env(), sd, builds)
    untimed = [replace(x, start_time=0, stop_time=0) for x in (*nix, *ours)]
    assert untimed[:2] == untimed[2:]
    assert [x.status for x in ours] == [BuildStatus.Built, BuildStatus.AlreadyValid]
    out = str(ours[0].built_outputs["out"].out_path)
    assert is_valid(nix_store, ours_uri, out)
    info = ["nix", "path-info", "--json"]
    hashes = [json.loads(nix_store.run(*info, "--store", u, out, store_flag=False))[0]["narHash"]
              for u in (nix_store.uri, ours_uri)]  # fmt: skip
    assert hashes[0] == hashes[1]


def test_import_paths_takes_nix_store_export(
    populated: tuple[NixStore, dict[str, str]], tmp_path: Path
) -> None:
    """`ImportPaths` (older clients' way to push): a `nix-store --export` stream, dependencies first."""
    store, p = populated
    export = store.run("nix-store", "--export", p["source"], p["out"])
    uri = storekit_store(tmp_path, store.store_dir)
    done = exchange(
        storekit_serve(uri), greeting().u64(ServeCommand.ImportPaths).getvalue() + export, store.env()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout[16:] == WireWriter().u64(1).getvalue()
    assert is_valid(store, uri, p["out"]) and is_valid(store, uri, p["source"])
    refs = ["nix-store", "--store", uri, "-q", "--references", p["out"]]
    assert subprocess.run(
        refs, env=store.env(), capture_output=True, text=True, check=True
    ).stdout.split() == [p["source"]]


def test_a_client_hanging_up_kills_its_build(nix_store: NixStore, drvs: dict[str, str]) -> None:
    sd = StoreDir(nix_store.store_dir)
    argv = storekit_serve(nix_store.uri)
    proc = subprocess.Popen(
        argv, env=nix_store.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stderr is not None
    w = greeting().u64(ServeCommand.BuildDerivation)
    write_basic_derivation(w, sd.parse_path(drvs["hangs"]), read_derivation(Path(drvs["hangs"])))
    proc.stdin.write(build_options(w).getvalue())
    proc.stdin.flush()
    seen = b""
    while b"now-hanging" not in seen:  # the builder runs
        chunk = proc.stderr.read1(4096)  # type: ignore[attr-defined]
        assert chunk, seen
        seen += chunk
    assert proc.stdout is not None
    proc.stdin.close()  # the client goes away, both ways
    proc.stdout.close()
    assert proc.wait(timeout=120) == 1
    err = seen + proc.stderr.read()
    assert err.decode().splitlines()[-1].startswith("error: serve protocol: the client closed"), err
    out = read_derivation(Path(drvs["hangs"])).outputs["out"].path
    assert not is_valid(nix_store, nix_store.uri, out)


def storekit_cli(*args: str, env: dict[str, str], input: bytes | None = None) -> bytes:
    argv = [sys.executable, "-m", "storekit", *args]
    return subprocess.run(argv, env=env, input=input, capture_output=True, check=True).stdout


def test_valid_paths_substitutes_when_asked(nix_store: NixStore, tmp_path: Path) -> None:
    """`QueryValidPaths` with `substitute` (builders-use-substitutes): from a cache, trusted keys only.

    The path comes through `nix-store --export`, which drops its content address: only a signature
    by a trusted key vouches for it."""
    env = nix_store.env()
    src = tmp_path / "payload"
    src.mkdir()
    (src / "f").write_text("from the cache\n")
    elsewhere = (
        f"local?store={nix_store.store_dir}&real={tmp_path / 'src/store'}&state={tmp_path / 'src/var'}"
    )
    path = nix_store.text("nix-store", "--add", str(src))
    export = nix_store.run("nix-store", "--export", path)
    storekit_cli("store", "import", "--store", elsewhere, env=env, input=export)
    (tmp_path / "k.sk").write_bytes(storekit_cli("key", "generate", "demo-1", env=env))
    public = storekit_cli("key", "public", env=env, input=(tmp_path / "k.sk").read_bytes()).decode().strip()
    cache = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}"
    storekit_cli(
        "copy", "--from", elsewhere, "--to", cache, "--sign-key", str(tmp_path / "k.sk"), path, env=env
    )
    request = greeting().u64(ServeCommand.QueryValidPaths).bool(False).bool(True).strings([path]).getvalue()
    uri = storekit_store(tmp_path, nix_store.store_dir)

    untrusted = exchange([*storekit_serve(uri), "--substituters", cache], request, env)
    assert untrusted.returncode == 0, untrusted.stderr
    assert untrusted.stdout[16:] == WireWriter().strings([]).getvalue()  # unsigned for us: not taken
    assert b"warning: cannot substitute" in untrusted.stderr

    argv = [*storekit_serve(uri), "--substituters", cache, "--trusted-public-keys", public]
    done = exchange(argv, request, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout[16:] == WireWriter().strings([path]).getvalue()
    assert is_valid(nix_store, uri, path)
