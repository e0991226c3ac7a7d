"""The local store on its own: adding, querying, refusing bad input, deleting, GC, verify, optimise.

Compatibility with real Nix is tested in tests/interop/test_store_interop.py; here the store is checked
against its own invariants and against the core (paths from `StoreDir`, hashes from `nar.fs`).
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.errors import HashMismatch, PathNotValid, StoreError, StorekitError
from storekit.hashing import Hash
from storekit.nar.fs import dump_path, hash_path
from storekit.store.base import ValidPathInfo
from storekit.store.export import export_paths, import_paths
from storekit.store.gc import add_root, collect_garbage, delete_paths, find_roots
from storekit.store.layout import STAGING_PREFIX
from storekit.store.local import LocalStore
from storekit.store.optimise import optimise_stores
from storekit.store.specs import local_spec_for
from storekit.store.verify import verify_store
from storekit.storepath import StoreDir, StorePath


def open_local(root: Path, *, real: Path | None = None, store_dir: str | None = None) -> LocalStore:
    return LocalStore(
        local_spec_for(
            store_dir or str(root / "store"),
            state_dir=str(root / "var" / "nix"),
            real_dir=str(real) if real else None,
        )
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = open_local(tmp_path / "s")
    yield s
    s.close()


def make_tree(root: Path, payload: bytes = b"hello\n") -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "file").write_bytes(payload)
    (root / "sub" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "sub" / "tool").chmod(0o755)
    (root / "link").symlink_to("sub/tool")
    return root


def nar_bytes(path: Path) -> bytes:
    return b"".join(dump_path(path))


# --- adding ---------------------------------------------------------------------------------------


def test_add_path_names_and_registers_like_nix_store_add(store: LocalStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    nar_hash, size = hash_path(src)
    path = store.add_path(str(src))
    assert path == store.store_dir.make_source_path("src", nar_hash)
    info = store.query_path_info(path)
    assert (info.nar_hash, info.nar_size, info.references) == (nar_hash, size, frozenset())
    assert info.ca == f"fixed:r:sha256:{nar_hash.nix32}"
    assert nar_bytes(Path(store.real_path(path))) == nar_bytes(src)


def test_added_files_are_canonical(store: LocalStore, tmp_path: Path) -> None:
    path = store.add_path(str(make_tree(tmp_path / "src")))
    top = Path(store.real_path(path))
    expected = {"": 0o555, "file": 0o444, "sub": 0o555, "sub/tool": 0o555}
    for rel, mode in expected.items():
        st = (top / rel).lstat()
        assert (rel, stat.S_IMODE(st.st_mode), st.st_mtime) == (rel, mode, 1)
    assert os.lstat(top / "link").st_mtime == 1
    assert os.readlink(top / "link") == "sub/tool"


def test_adding_twice_gives_one_path_and_leaves_no_temp_files(store: LocalStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    assert store.add_path(str(src)) == store.add_path(str(src))
    leftovers = [n for n in os.listdir(store.real_dir) if n.startswith(STAGING_PREFIX) or n.endswith(".lock")]
    assert leftovers == []


def test_add_path_with_a_name_and_a_single_file(store: LocalStore, tmp_path: Path) -> None:
    f = tmp_path / "hello.txt"
    f.write_bytes(b"hello\n")
    path = store.add_path(str(f), name="greeting")
    assert path.name == "greeting"
    assert Path(store.real_path(path)).read_bytes() == b"hello\n"
    with pytest.raises(StorekitError, match="illegal character"):
        store.add_path(str(f), name="bad name")


def test_text_paths_references_closure_and_referrers(store: LocalStore, tmp_path: Path) -> None:
    dep = store.add_path(str(make_tree(tmp_path / "dep")))
    mid = store.add_text("mid", f"uses {dep}".encode(), [dep])
    top = store.add_text("top", f"uses {mid}".encode(), [mid])
    assert mid == store.store_dir.make_text_path("mid", Hash.of(f"uses {dep}".encode()), [dep])
    assert store.query_path_info(top).references == {mid}
    assert store.closure([top]) == {top, mid, dep}
    assert store.topo_sort([dep, top, mid]) == [top, mid, dep]
    assert store.query_referrers(dep) == {mid}
    assert store.query_path_from_hash_part(mid.hash_part) == mid
    assert store.query_path_from_hash_part("0" * 32) is None


def test_paths_of_another_store_dir_are_not_valid(store: LocalStore) -> None:
    other = StorePath("/elsewhere/store", "0" * 32, "x")
    assert not store.is_valid_path(other)
    with pytest.raises(PathNotValid):
        store.query_path_info(other)


# --- refusing bad input ------------------------------------------------------------------------------


def _info_for(store: LocalStore, src: Path, **overrides: object) -> ValidPathInfo:
    nar_hash, size = hash_path(src)
    fields: dict[str, object] = {
        "path": store.store_dir.make_source_path(src.name, nar_hash),
        "nar_hash": nar_hash,
        "nar_size": size,
        "ca": f"fixed:r:sha256:{nar_hash.nix32}",
    }
    fields.update(overrides)
    return ValidPathInfo(**fields)  # type: ignore[arg-type]


def _nothing_left(store: LocalStore, path: StorePath) -> bool:
    names = os.listdir(store.real_dir)
    return (
        not store.is_valid_path(path)
        and path.base_name not in names
        and not any(n.startswith(STAGING_PREFIX) for n in names)
    )


def test_valid_among_answers_like_is_valid_path_for_many_paths(store: LocalStore) -> None:
    added = [store.add_text(f"t{i}", f"{i}".encode(), []) for i in range(600)]  # past one query's 500
    gone = added[::7]
    delete_paths(store, gone)
    asked = [*added, StorePath(StoreDir("/elsewhere/store"), added[1].hash_part, added[1].name)]
    assert store.valid_among(asked) == {p for p in asked if store.is_valid_path(p)}
    assert store.valid_among(asked) == set(added) - set(gone)
    assert store.valid_among([]) == set()


def test_nar_with_the_wrong_hash_is_refused_naming_both(store: LocalStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    claimed = Hash.of(b"something else")
    info = _info_for(store, src, nar_hash=claimed, ca=None)
    with pytest.raises(HashMismatch) as e:
        store.add_from_nar(info, io.BytesIO(nar_bytes(src)))
    assert str(claimed) in str(e.value) and str(hash_path(src)[0]) in str(e.value)
    assert _nothing_left(store, info.path)


def test_truncated_or_oversized_nar_is_refused(store: LocalStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    info = _info_for(store, src)
    with pytest.raises(StorekitError):
        store.add_from_nar(info, io.BytesIO(nar_bytes(src)[:-16]))
    assert _nothing_left(store, info.path)
    with pytest.raises(StorekitError, match="size mismatch"):
        store.add_from_nar(_info_for(store, src, nar_size=info.nar_size + 8), io.BytesIO(nar_bytes(src)))
    assert _nothing_left(store, info.path)


def test_a_false_content_address_is_refused(store: LocalStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    wrong = _info_for(store, src, ca=f"fixed:r:sha256:{Hash.of(b'x').nix32}")
    with pytest.raises(StoreError, match="claims to be content-addressed"):
        store.add_from_nar(wrong, io.BytesIO(nar_bytes(src)))
    assert _nothing_left(store, wrong.path)


def test_references_must_be_valid_first(store: LocalStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    ghost = store.store_dir.make_text_path("ghost", Hash.of(b"ghost"))
    info = _info_for(store, src, ca=None, references=frozenset({ghost}))
    with pytest.raises(StoreError, match="not valid"):
        store.add_from_nar(info, io.BytesIO(nar_bytes(src)))
    assert _nothing_left(store, info.path)


def test_unsafe_nar_is_refused(store: LocalStore) -> None:
    from storekit.nar import format as fmt

    evil = (
        fmt.HEADER
        + fmt.DIRECTORY_START
        + fmt.entry_header(b"..")
        + fmt.regular_header(0, False)
        + fmt.CLOSE
        + fmt.CLOSE
        + fmt.CLOSE
    )
    path = store.store_dir.make_text_path("evil", Hash.of(evil))
    info = ValidPathInfo(path, Hash.of(evil), len(evil))
    with pytest.raises(StorekitError):
        store.add_from_nar(info, io.BytesIO(evil))
    assert _nothing_left(store, path)


# --- export / import ---------------------------------------------------------------------------------


def test_export_import_round_trip(store: LocalStore, tmp_path: Path) -> None:
    dep = store.add_path(str(make_tree(tmp_path / "dep")))
    top = store.add_text("top", f"uses {dep}".encode(), [dep])
    buf = io.BytesIO()
    assert export_paths(store, [top, dep], buf) == 2
    buf.seek(0)
    with open_local(tmp_path / "other", store_dir=store.store_dir.path) as other:
        assert import_paths(other, buf) == [dep, top]
        for p in (dep, top):
            mine, theirs = store.query_path_info(p), other.query_path_info(p)
            assert (theirs.nar_hash, theirs.nar_size, theirs.references) == (
                mine.nar_hash,
                mine.nar_size,
                mine.references,
            )
        assert verify_store(other, check_contents=True).ok


def test_import_refuses_garbage(store: LocalStore) -> None:
    with pytest.raises(StoreError, match="nix-store --export"):
        import_paths(store, io.BytesIO(b"\x07" + bytes(7)))
    with pytest.raises(StoreError, match="ends early"):
        import_paths(store, io.BytesIO(b"\x01"))


# --- delete and garbage collection -------------------------------------------------------------------


def test_delete_refuses_referenced_paths(store: LocalStore, tmp_path: Path) -> None:
    dep = store.add_path(str(make_tree(tmp_path / "dep")))
    top = store.add_text("top", f"uses {dep}".encode(), [dep])
    with pytest.raises(StoreError, match="in use by"):
        delete_paths(store, [dep])
    assert store.is_valid_path(dep)
    result = delete_paths(store, [top])
    assert result.paths == (str(top),) and not store.is_valid_path(top)
    assert not os.path.lexists(store.real_path(top))
    delete_paths(store, [dep])
    assert not store.is_valid_path(dep)


def test_delete_refuses_rooted_paths(store: LocalStore, tmp_path: Path) -> None:
    p = store.add_path(str(make_tree(tmp_path / "p")))
    add_root(store, p, str(tmp_path / "result"))
    with pytest.raises(StoreError, match="still alive"):
        delete_paths(store, [p])


def test_gc_keeps_roots_and_their_closure(store: LocalStore, tmp_path: Path) -> None:
    dep = store.add_path(str(make_tree(tmp_path / "dep")))
    kept = store.add_text("kept", f"uses {dep}".encode(), [dep])
    junk = store.add_path(str(make_tree(tmp_path / "junk", b"junk\n")))
    link = add_root(store, kept, str(tmp_path / "result"))
    assert os.readlink(link) == str(kept)
    assert find_roots(store) == {kept: {link}}
    dry = collect_garbage(store, dry_run=True)
    assert dry.paths == (str(junk),) and dry.bytes_freed > 0 and store.is_valid_path(junk)
    result = collect_garbage(store)
    assert result.paths == (str(junk),) and result.bytes_freed == dry.bytes_freed
    assert not store.is_valid_path(junk) and not os.path.lexists(store.real_path(junk))
    assert store.is_valid_path(kept) and store.is_valid_path(dep)
    assert verify_store(store, check_contents=True).ok


def test_gc_drops_stale_indirect_roots_and_leftovers(store: LocalStore, tmp_path: Path) -> None:
    p = store.add_path(str(make_tree(tmp_path / "p")))
    add_root(store, p, str(tmp_path / "result"))
    os.unlink(tmp_path / "result")
    (Path(store.real_dir) / (p.hash_part[::-1] + "-half-written")).mkdir()
    os.mkdir(os.path.join(store.real_dir, STAGING_PREFIX + "dead"))
    collect_garbage(store)
    assert not store.is_valid_path(p)
    assert sorted(os.listdir(store.real_dir)) == [".links"]
    assert os.listdir(os.path.join(store.gcroots_dir, "auto")) == []


def test_temp_roots_of_other_live_processes_are_kept(store: LocalStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "p")
    code = (
        "import sys; from storekit.store.specs import parse_store_spec; "
        "from storekit.store.open import open_store\n"
        f"s = open_store(parse_store_spec({store.uri!r}))\n"
        f"print(s.add_path({str(src)!r}), flush=True); sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent.parent,
        text=True,
    )
    try:
        assert child.stdout is not None
        path = store.parse_path(child.stdout.readline().strip())
        assert collect_garbage(store).paths == ()
        assert store.is_valid_path(path)
    finally:
        child.communicate("")
    assert collect_garbage(store).paths == (str(path),)  # its roots died with it


# --- verify and optimise -----------------------------------------------------------------------------


def test_verify_finds_modified_and_vanished_paths(store: LocalStore, tmp_path: Path) -> None:
    a = store.add_path(str(make_tree(tmp_path / "a")))
    b = store.add_path(str(make_tree(tmp_path / "b", b"other\n")))
    assert verify_store(store, check_contents=True).ok
    victim = Path(store.real_path(a)) / "file"
    victim.chmod(0o644)
    victim.write_bytes(b"tampered\n")
    report = verify_store(store, check_contents=True)
    assert len(report.errors) == 1 and f"path '{a}' was modified" in report.errors[0]
    assert verify_store(store).ok  # existence only
    from storekit.store.canonical import delete_path

    delete_path(store.real_path(b))
    report = verify_store(store)
    assert report.ok and any("disappeared" in f for f in report.fixed)
    assert not store.is_valid_path(b)


def test_optimise_links_identical_files(store: LocalStore, tmp_path: Path) -> None:
    a = store.add_path(str(make_tree(tmp_path / "a")))
    b = store.add_path(str(make_tree(tmp_path / "b")) + "/", name="b2")
    assert a != b
    stats = optimise_stores([store])
    assert stats.files_linked == 3 and stats.bytes_freed > 0  # file, tool and the symlink
    fa, fb = Path(store.real_path(a)) / "file", Path(store.real_path(b)) / "file"
    assert fa.stat().st_ino == fb.stat().st_ino
    assert (Path(store.links_dir) / hash_path(fa)[0].nix32).stat().st_ino == fa.stat().st_ino
    assert stat.S_IMODE(Path(store.real_path(b), "sub").stat().st_mode) == 0o555
    assert Path(store.real_path(b), "sub").stat().st_mtime == 1
    assert optimise_stores([store]).files_linked == 0
    assert verify_store(store, check_contents=True).ok


def test_optimise_across_stores(tmp_path: Path) -> None:
    with open_local(tmp_path / "x") as x, open_local(tmp_path / "y") as y:
        px = x.add_path(str(make_tree(tmp_path / "a")))
        py = y.add_path(str(make_tree(tmp_path / "a2")))
        stats = optimise_stores([x, y])
        assert stats.files_linked == 3 and stats.bytes_freed > 0
        fx, fy = Path(x.real_path(px)) / "file", Path(y.real_path(py)) / "file"
        assert fx.stat().st_ino == fy.stat().st_ino
        assert verify_store(x, check_contents=True).ok and verify_store(y, check_contents=True).ok


# --- logical vs physical location ---------------------------------------------------------------------


def test_real_dir_differs_from_the_logical_store_dir(tmp_path: Path) -> None:
    logical = "/h5-storekit-test-nonexistent/store"
    with open_local(tmp_path / "s", real=tmp_path / "phys", store_dir=logical) as s:
        p = s.add_path(str(make_tree(tmp_path / "src")))
        assert str(p).startswith(logical + "/")
        assert (tmp_path / "phys" / p.base_name / "file").read_bytes() == b"hello\n"
        assert not os.path.exists(logical)
        t = s.add_text("t", f"{p}".encode(), [p])
        assert s.closure([t]) == {t, p}
        assert verify_store(s, check_contents=True).ok
        assert optimise_stores([s]).files_linked == 0
        assert set(collect_garbage(s).paths) == {str(t), str(p)}
        assert os.listdir(tmp_path / "phys") == [".links"]


def test_verify_repairs_from_a_substitute(store: LocalStore, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "a")
    path = store.add_path(str(src))
    victim = Path(store.real_path(path)) / "file"
    victim.chmod(0o644)
    victim.write_bytes(b"tampered\n")
    report = verify_store(store, check_contents=True, repair=True)
    assert "no substituter" in report.errors[0]
    report = verify_store(
        store, check_contents=True, repair=True, substitute=lambda p: io.BytesIO(nar_bytes(src))
    )
    assert report.ok and "restored" in report.fixed[0]
    assert victim.read_bytes() == b"hello\n" and stat.S_IMODE(victim.stat().st_mode) == 0o444
    assert verify_store(store, check_contents=True).ok


def test_closure_in_one_query_is_the_walk_of_every_store(store: LocalStore) -> None:
    """`LocalStore.closure` asks the database once; `Store.closure` walks path by path: same answer,
    and for a missing path the same error naming the same path."""
    import random

    from storekit.store.base import Store

    rng = random.Random(13)
    paths: list[StorePath] = []
    for i in range(60):
        refs = rng.sample(paths, min(len(paths), rng.randrange(5)))
        paths.append(store.add_text(f"p{i}", f"{i}: {' '.join(map(str, refs))}".encode(), refs))
    paths.append(store.add_text("top", b"top", paths[-3:]))
    for roots in ([], [paths[0]], [paths[-1]], paths[10:14], rng.sample(paths, 12), paths, paths[::-1]):
        assert store.closure(roots) == Store.closure(store, roots)
        assert store.closure(set(roots)) == Store.closure(store, set(roots))
    assert store.closure([paths[-1]]) >= {*paths[-4:]}  # it does follow references
    gone = [store.parse_path(f"{store.store_dir}/{c * 32}-gone") for c in "01"]
    for roots in ([gone[0]], [paths[3], gone[0], paths[9], gone[1], paths[20]]):
        with pytest.raises(PathNotValid) as ours:
            store.closure(roots)
        with pytest.raises(PathNotValid) as walked:
            Store.closure(store, roots)
        assert str(ours.value) == str(walked.value)
    assert store.closure(paths, include_derivers=True) == Store.closure(store, paths, include_derivers=True)
