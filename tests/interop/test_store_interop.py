"""The local store against real Nix 2.8, both ways, under a store dir that is not /nix/store.

storekit writes -> real Nix reads (`nix path-info --json`, `nix-store -qR`, `nix-store --verify
--check-contents`, `nix store verify`, `nix-store --import`); real Nix writes (`--add`,
`nix-instantiate`, `nix-build`, `--export`, `--optimise`, `--add-root`) -> storekit reads, verifies, GCs.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nar_trees
import pytest
from hypothesis import HealthCheck, given, settings
from nixoracle import NixStore

from storekit.cli.store import path_info_json
from storekit.errors import HashMismatch
from storekit.hashing import Hash
from storekit.nar.writer import Node, to_bytes
from storekit.store.base import ValidPathInfo
from storekit.store.export import export_paths, import_paths
from storekit.store.gc import add_root, collect_garbage
from storekit.store.local import LocalStore
from storekit.store.optimise import optimise_stores
from storekit.store.specs import local_spec_for
from storekit.store.verify import verify_store
from storekit.storepath import StorePath

pytestmark = pytest.mark.interop

BUSYBOX = "/bin/busybox"


def open_storekit(nix_store: NixStore) -> LocalStore:
    """The same store real Nix uses: logical dir = physical dir, state in `<root>/var/nix`."""
    return LocalStore(local_spec_for(nix_store.store_dir, state_dir=str(nix_store.state_dir)))


@pytest.fixture
def sk(nix_store: NixStore) -> Iterator[LocalStore]:
    store = open_storekit(nix_store)
    yield store
    store.close()


def make_tree(root: Path, tag: str = "") -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "share" / "empty").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool" + tag.encode() + b"\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "share" / "data").write_bytes(b"data " * 1000 + tag.encode())
    (root / "share" / "same").write_bytes(b"identical in every tree\n")
    (root / "share" / "caf\u00e9 \u2603").write_bytes(b"unicode name\n")
    (root / "link").symlink_to("bin/tool")
    (root / "dangling").symlink_to("/nowhere/at/all")
    return root


def nix_json(nix_store: NixStore, *paths: str, recursive: bool = False) -> list[dict[str, Any]]:
    """`nix path-info --json`; a `.drv` needs `--derivation` (else Nix shows its outputs)."""
    flags = ["-r"] if recursive else []
    result: list[dict[str, Any]] = []
    for group, extra in (
        ([p for p in paths if not p.endswith(".drv")], []),
        ([p for p in paths if p.endswith(".drv")], ["--derivation"]),
    ):
        if group:
            result += json.loads(nix_store.run("nix", "path-info", "--json", *flags, *extra, *group))
    return sorted(result, key=lambda o: str(o["path"]))


def nix_verify(nix_store: NixStore) -> None:
    """Both of Nix's checks must pass and print no error."""
    proc = subprocess.run(
        ["nix-store", "--store", nix_store.uri, "--verify", "--check-contents"],
        capture_output=True,
        env=nix_store.env(),
        check=False,
        text=True,
    )
    assert proc.returncode == 0 and "error" not in proc.stderr and "modified" not in proc.stderr, proc.stderr
    nix_store.run("nix", "store", "verify", "--all", "--no-trust")


def storekit_json(store: LocalStore, paths: list[StorePath]) -> list[dict[str, Any]]:
    return [path_info_json(store.query_path_info(p)) for p in sorted(paths, key=str)]


# --- the database itself ----------------------------------------------------------------------------


def _master(db: Path) -> list[tuple[str, ...]]:
    conn = sqlite3.connect(db)
    try:
        return sorted(conn.execute("select type, name, tbl_name, sql from sqlite_master"))
    finally:
        conn.close()


def test_schema_is_the_one_nix_creates(nix_store: NixStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    env = nix_store.env()
    env["NIX_CONFIG"] += "\nexperimental-features = nix-command ca-derivations"
    subprocess.run(
        ["nix-store", "--store", nix_store.uri, "--add", str(tmp_path / "f")],
        env=env,
        check=True,
        capture_output=True,
    )
    with LocalStore(local_spec_for(str(tmp_path / "sk" / "store"))) as fresh:
        mine = Path(fresh.db_dir)
    theirs = nix_store.state_dir / "db"
    assert _master(mine / "db.sqlite") == _master(theirs / "db.sqlite")
    for name in ("schema", "ca-schema"):
        assert (mine / name).read_bytes() == (theirs / name).read_bytes()


# --- storekit writes, Nix reads -------------------------------------------------------------------------


def test_add_prints_the_path_nix_store_add_prints(
    nix_store: NixStore, sk: LocalStore, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "tree")
    single = tmp_path / "single.txt"
    single.write_bytes(b"hello\n")
    empty = tmp_path / "emptydir"
    empty.mkdir()
    for src in (tree, single, empty, tree / "link"):
        mine = str(sk.add_path(str(src)))
        assert nix_store.text("nix-store", "--add", str(src)) == mine
    nix_verify(nix_store)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=nar_trees.trees)
def test_random_trees_added_from_a_nar_match_nix(nix_store: NixStore, tmp_path: Path, tree: Node) -> None:
    """storekit adds a random tree from its NAR; real Nix names the same tree identically and verifies."""
    src = tmp_path / f"t{os.urandom(6).hex()}"
    nar_trees.materialize(tree, src)
    nar = to_bytes(tree)
    with open_storekit(nix_store) as sk:
        nar_hash = Hash.of(nar)
        path = sk.store_dir.make_source_path(src.name, nar_hash)
        info = ValidPathInfo(path, nar_hash, len(nar), ca=f"fixed:r:sha256:{nar_hash.nix32}")
        sk.add_from_nar(info, io.BytesIO(nar))
        assert b"".join(sk.nar_from_path(path)) == nar
    assert nix_store.text("nix-store", "--add", str(src)) == str(path)
    assert nix_json(nix_store, str(path))[0]["narHash"] == nar_hash.sri
    nix_verify(nix_store)


def test_nix_reads_what_storekit_wrote(nix_store: NixStore, sk: LocalStore, tmp_path: Path) -> None:
    dep = sk.add_path(str(make_tree(tmp_path / "dep")))
    mid = sk.add_text("mid.txt", f"uses {dep}/bin/tool".encode(), [dep])
    top = sk.add_text("top.txt", f"uses {mid} and {dep}".encode(), [mid, dep])
    assert nix_json(nix_store, str(top), recursive=True) == storekit_json(sk, [top, mid, dep])
    assert set(nix_store.text("nix-store", "-qR", str(top)).split()) == {str(top), str(mid), str(dep)}
    assert set(nix_store.text("nix-store", "-q", "--referrers", str(dep)).split()) == {str(mid), str(top)}
    nix_verify(nix_store)


def test_nix_imports_what_storekit_exported(nix_store: NixStore, sk: LocalStore, tmp_path: Path) -> None:
    dep = sk.add_path(str(make_tree(tmp_path / "dep")))
    top = sk.add_text("top.txt", f"uses {dep}".encode(), [dep])
    buf = io.BytesIO()
    export_paths(sk, [top, dep], buf)
    other = f"local?store={nix_store.store_dir}&state={tmp_path}/b/var&real={tmp_path}/b/store"
    proc = subprocess.run(
        ["nix-store", "--store", other, "--import"],
        input=buf.getvalue(),
        env=nix_store.env(),
        capture_output=True,
        check=True,
    )
    assert proc.stdout.decode().split() == [str(dep), str(top)]
    got = json.loads(
        subprocess.run(
            ["nix", "path-info", "--store", other, "--json", "-r", str(top)],
            env=nix_store.env(),
            capture_output=True,
            check=True,
        ).stdout
    )
    mine = storekit_json(sk, [top, dep])
    strip = ("registrationTime", "ca")  # Nix's import format carries neither
    assert [{k: v for k, v in o.items() if k not in strip} for o in got] == [
        {k: v for k, v in o.items() if k not in strip} for o in mine
    ]


def test_optimise_names_links_like_nix_and_nix_still_verifies(nix_store: NixStore, tmp_path: Path) -> None:
    """storekit and `nix-store --optimise` on two identical stores give the same `.links` names."""
    srcs = [make_tree(tmp_path / "a", "1"), make_tree(tmp_path / "b", "2")]
    with open_storekit(nix_store) as sk:
        for src in srcs:
            sk.add_path(str(src))
        stats = optimise_stores([sk])
    assert stats.files_linked >= 4 and stats.bytes_freed > 0
    nix_verify(nix_store)
    twin = NixStore(root=tmp_path / "twin", store_dir=str(tmp_path / "twin" / "store"))
    for src in srcs:
        twin.run("nix-store", "--add", str(src))
    twin.run("nix-store", "--optimise")
    names = sorted(os.listdir(Path(nix_store.store_dir) / ".links"))
    assert names == sorted(os.listdir(Path(twin.store_dir) / ".links"))


def test_nix_gc_keeps_storekit_roots(nix_store: NixStore, sk: LocalStore, tmp_path: Path) -> None:
    kept = sk.add_path(str(make_tree(tmp_path / "kept", "k")))
    junk = sk.add_path(str(make_tree(tmp_path / "junk", "j")))
    add_root(sk, kept, str(tmp_path / "result"))
    sk.close()  # drop this process's temp roots, which real Nix would honour
    nix_store.run("nix-store", "--gc")
    with open_storekit(nix_store) as again:
        assert again.is_valid_path(kept) and not again.is_valid_path(junk)
    nix_verify(nix_store)
    sk.__init__(sk.spec)  # type: ignore[misc]  # reopen for the fixture


def test_tampered_nar_is_refused_and_nothing_becomes_valid(nix_store: NixStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    path = nix_store.text("nix-store", "--add", str(src))
    exported = bytearray(nix_store.run("nix-store", "--export", path))
    at = exported.index(b"data data")
    exported[at : at + 4] = b"DATA"
    spec = local_spec_for(
        nix_store.store_dir, state_dir=str(tmp_path / "sk" / "var"), real_dir=str(tmp_path / "sk" / "store")
    )
    with LocalStore(spec) as sk:
        info = json.loads(nix_store.run("nix", "path-info", "--json", path))[0]
        good = StorePath(nix_store.store_dir, *os.path.basename(path).split("-", 1))
        declared = ValidPathInfo(good, Hash.parse(info["narHash"]), info["narSize"], ca=info["ca"])
        nar = bytes(exported[8 : 8 + info["narSize"]])
        with pytest.raises(HashMismatch) as e:
            sk.add_from_nar(declared, io.BytesIO(nar))
        assert str(declared.nar_hash) in str(e.value) and "got" in str(e.value)
        assert sk.query_all_valid_paths() == set()
        assert os.listdir(sk.real_dir) == [".links"]


def test_nix_can_add_while_storekit_collects(nix_store: NixStore, sk: LocalStore, tmp_path: Path) -> None:
    """During a storekit GC, real Nix tells it about new paths through the GC socket, so they are kept."""
    from storekit.store.gc import collector

    src = make_tree(tmp_path / "src")
    with collector(sk) as server:
        path = nix_store.text("nix-store", "--add", str(src))
        assert os.path.basename(path)[:32] in server.hash_parts
    nix_verify(nix_store)


# --- crashes and concurrency with real Nix ------------------------------------------------------------

CHILD = """
import sys
from storekit.store.specs import parse_store_spec
from storekit.store.open import open_store
print(open_store(parse_store_spec(sys.argv[1])).add_path(sys.argv[2]), flush=True)
"""
REPO = Path(__file__).parent.parent.parent


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed (apt-get install strace)")
@pytest.mark.parametrize(("syscall", "n"), [("rename", 1), ("chmod", 3), ("fdatasync", 1)])
def test_after_kill_9_nix_verifies_and_nix_add_succeeds(
    nix_store: NixStore, tmp_path: Path, syscall: str, n: int
) -> None:
    src = make_tree(tmp_path / "src")
    argv = [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        f"trace={syscall}",
        "-e",
        f"inject={syscall}:signal=KILL:when={n}",
        sys.executable,
        "-c",
        CHILD,
        nix_store.store_dir,
        str(src),
    ]
    crashed = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert crashed.returncode in (-9, 137) and not crashed.stdout, crashed.stderr
    nix_verify(nix_store)
    path = nix_store.text("nix-store", "--add", str(src))
    nix_verify(nix_store)
    with open_storekit(nix_store) as sk:
        assert str(sk.add_path(str(src))) == path
        assert verify_store(sk, check_contents=True).ok


def test_storekit_and_nix_add_the_same_path_at_once(nix_store: NixStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    (src / "big").write_bytes(os.urandom(4 << 20))
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, nix_store.store_dir, str(src)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        theirs = nix_store.text("nix-store", "--add", str(src))
        mine, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert mine.strip() == theirs
        nix_verify(nix_store)
        nix_store.run("nix-store", "--delete", theirs)


# --- Nix writes, storekit reads ---------------------------------------------------------------------------


DRV = """
let
  sh = "{busybox}";
  dep = derivation {{ name = "dep"; system = builtins.currentSystem; builder = sh;
                      args = [ "sh" "-c" "echo dep > $out" ]; }};
in derivation {{
  name = "top"; system = builtins.currentSystem; builder = sh;
  args = [ "sh" "-c"
           "mkdir $out; echo ${{dep}} > $out/ref; echo $out > $out/self; cp ${{./src.txt}} $out/src" ];
}}
"""


@pytest.fixture
def built(nix_store: NixStore, tmp_path: Path) -> tuple[str, str]:
    """A derivation instantiated and built by real Nix: (drv path, output path)."""
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static not installed")
    (tmp_path / "src.txt").write_text("a source\n")
    (tmp_path / "default.nix").write_text(DRV.format(busybox=BUSYBOX))
    drv = nix_store.text("nix-instantiate", str(tmp_path / "default.nix"))
    root = nix_store.text("nix-store", "--realise", drv, "--add-root", str(tmp_path / "result"), "--indirect")
    return drv, os.readlink(root)


def test_storekit_reads_a_store_nix_built(nix_store: NixStore, built: tuple[str, str]) -> None:
    drv, out = built
    with open_storekit(nix_store) as sk:
        everything = sorted(sk.query_all_valid_paths(), key=str)
        assert nix_json(nix_store, *map(str, everything)) == storekit_json(sk, everything)
        top = sk.parse_path(out)
        assert {str(p) for p in sk.closure([top])} == set(nix_store.text("nix-store", "-qR", out).split())
        drv_path = sk.parse_path(drv)
        assert set(map(str, sk.closure([drv_path]))) == set(nix_store.text("nix-store", "-qR", drv).split())
        assert sk.query_derivation_outputs(drv_path) == {"out": top}
        assert sk.query_valid_derivers(top) == {drv_path}
        assert sk.query_path_info(top).deriver == drv_path and sk.query_path_info(top).ultimate
        assert top in sk.query_path_info(top).references  # `echo $out > $out/self`
        assert verify_store(sk, check_contents=True).ok


def test_storekit_gc_on_a_nix_store(nix_store: NixStore, built: tuple[str, str], tmp_path: Path) -> None:
    drv, out = built
    loose = tmp_path / "loose"
    loose.write_text("nobody roots me\n")
    junk = nix_store.text("nix-store", "--add", str(loose))
    with open_storekit(nix_store) as sk:
        result = collect_garbage(sk)
        assert junk in result.paths
        assert sk.is_valid_path(sk.parse_path(out))
        assert sk.is_valid_path(sk.parse_path(drv))  # keep-derivations, as Nix defaults to
        for p in nix_store.text("nix-store", "-qR", out).split():
            assert sk.is_valid_path(sk.parse_path(p))
    nix_verify(nix_store)


def test_storekit_imports_what_nix_exported_and_re_adds_the_drv(
    nix_store: NixStore, built: tuple[str, str], tmp_path: Path
) -> None:
    drv, out = built
    closure = nix_store.text("nix-store", "-qR", out, drv).split()
    exported = nix_store.run("nix-store", "--export", *closure)
    spec = local_spec_for(
        nix_store.store_dir, state_dir=str(tmp_path / "sk" / "var"), real_dir=str(tmp_path / "sk" / "store")
    )
    with LocalStore(spec) as sk:
        imported = import_paths(sk, io.BytesIO(exported))
        assert set(map(str, imported)) == set(closure)
        theirs = {o["path"]: o for o in nix_json(nix_store, *closure)}
        for mine in storekit_json(sk, imported):
            expected = {k: v for k, v in theirs[mine["path"]].items() if k not in ("ca", "ultimate")}
            mine.pop("registrationTime"), expected.pop("registrationTime")
            assert mine == expected
        drv_path = sk.parse_path(drv)
        assert sk.query_derivation_outputs(drv_path) == {"out": sk.parse_path(out)}
        assert verify_store(sk, check_contents=True).ok
        text = Path(drv).read_bytes()
        refs = sk.query_path_info(drv_path).references
        assert sk.add_text(drv_path.name, text, refs) == drv_path
