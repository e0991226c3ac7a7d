"""Relocating closures between stores: plan, order, all-or-nothing, and the three ways to stage.

A small synthetic closure (a library path naming itself, and a path using it through a symlink, a
script and a binary) is relocated between memory stores (NAR streams, spooled) and local stores
(file to file, hard-linked or copied, or streamed); every way must give the same names and bytes.
Content-addressed results are checked the way Nix checks them when importing (`hashCAPath`: the NAR
hashed modulo the path's own hash part names the path).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from storekit.errors import RelocationError
from storekit.hashing import Hash
from storekit.nar.writer import Dir, File, Link, Node, to_bytes
from storekit.references import hash_modulo, scan_references
from storekit.relocate import Mode, relocate
from storekit.relocate.plan import check_store_dirs, references_first
from storekit.store.base import Store, ValidPathInfo
from storekit.store.content_address import ContentAddress
from storekit.store.link import LinkMode
from storekit.store.local import LocalStore
from storekit.store.memory import MemoryStore
from storekit.store.specs import local_spec_for
from storekit.storepath import StoreDir, StorePath

OLD = "/opt/old-store"
LIB_HASH = "1" * 32
APP_HASH = "2" * 32


def lib_path(store_dir: str = OLD) -> StorePath:
    return StorePath(store_dir, LIB_HASH, "libfoo-1.0")


def app_path(store_dir: str = OLD) -> StorePath:
    return StorePath(store_dir, APP_HASH, "app-1.0")


def closure_nodes(store_dir: str = OLD, blob_grows: bool = False) -> dict[StorePath, Node]:
    lib, app = lib_path(store_dir), app_path(store_dir)
    lib_node = Dir(
        {
            b"lib": Dir({b"libfoo.so": File(b"\x7fNOTELF\0" + f"{lib}/lib\0".encode())}),
            b"lib.pc": File(f"prefix={lib}\nlibdir=${{prefix}}/lib\n".encode()),
            b"self": Link(f"{lib}/lib".encode()),
        }
    )
    blob = b"\0\1" + f"{lib}/lib/libfoo.so".encode() + b"\0"
    app_node = Dir(
        {
            b"bin": Dir({b"app": File(f"#!/bin/sh\nexec {lib}/bin/x {app}\n".encode(), executable=True)}),
            b"data": File(blob if not blob_grows else blob + b"\0" + str(app).encode() + b"\0"),
            b"libfoo.so": Link(f"{lib}/lib/libfoo.so".encode()),
        }
    )
    return {lib: lib_node, app: app_node}


def fill(store: Store, nodes: dict[StorePath, Node]) -> None:
    """Add the closure with the references Nix's scanner would find."""
    for path in sorted(nodes, key=lambda p: p != lib_path(str(p.store_dir))):
        nar = to_bytes(nodes[path])
        refs = scan_references([nar], [p.hash_part for p in nodes])
        info = ValidPathInfo(
            path,
            Hash.of(nar),
            len(nar),
            frozenset(p for p in nodes if p.hash_part in refs),
            sigs=frozenset({"x:y"}),
        )
        store.add_from_nar(info, io.BytesIO(nar))


def memory(store_dir: str = OLD, **kw: bool) -> MemoryStore:
    store = MemoryStore(StoreDir(store_dir))
    fill(store, closure_nodes(store_dir, **kw))
    return store


def local(root: Path, store_dir: str) -> LocalStore:
    return LocalStore(local_spec_for(store_dir, state_dir=str(root / "var"), real_dir=str(root / "store")))


def nar_of(store: Store, path: StorePath) -> bytes:
    return b"".join(store.nar_from_path(path))


@pytest.mark.parametrize("new_dir", ["/opt/s", "/opt/new-store", "/opt/a-much-longer-store"])
def test_keep_hash_between_memory_stores(new_dir: str) -> None:
    src, dst = memory(), MemoryStore(StoreDir(new_dir))
    unsafe = len(new_dir) > len(OLD)  # the binaries cannot grow otherwise
    result = relocate(src, dst, [app_path()], mode=Mode.KEEP_HASH, allow_unsafe=unsafe)
    assert bool(result.warnings) == unsafe
    assert result.paths == {lib_path(): lib_path(new_dir), app_path(): app_path(new_dir)}
    for old, new in result.paths.items():
        info = dst.query_path_info(new)
        nar = nar_of(dst, new)
        assert OLD.encode() not in nar and new_dir.encode() in nar
        assert info.references == {result.paths[r] for r in src.query_path_info(old).references}
        assert info.ultimate and not info.sigs and info.ca is None
        assert (info.nar_hash, info.nar_size) == (Hash.of(nar), len(nar))
    assert b"prefix=" + new_dir.encode() in nar_of(dst, lib_path(new_dir))


def test_content_addressed_names_are_what_nix_checks_on_import() -> None:
    src, dst = memory(), MemoryStore(StoreDir("/opt/new"))  # shorter
    result = relocate(src, dst, [app_path()], mode=Mode.CONTENT_ADDRESSED)
    for old, new in result.paths.items():
        assert new.name == old.name and new.hash_part != old.hash_part
        info = dst.query_path_info(new)
        ca = ContentAddress.parse(info.ca or "")
        assert ca.store_path(dst.store_dir, new.name, info.references, new) == new
        nar = nar_of(dst, new)
        assert hash_modulo([nar], new.hash_part) == ca.hash  # Nix's hashCAPath
        assert old.hash_part.encode() not in nar and OLD.encode() not in nar
        assert info.deriver is None and not info.sigs
    new_lib = result.paths[lib_path()]
    assert new_lib in dst.query_path_info(new_lib).references  # it names itself


def test_every_way_of_staging_gives_the_same_paths_and_bytes(tmp_path: Path) -> None:
    mem_src = memory()
    outcomes = []
    for mode in Mode:
        per_way = []
        dst_mem = MemoryStore(StoreDir("/opt/new"))
        per_way.append((relocate(mem_src, dst_mem, [app_path()], mode=mode).paths, dst_mem))
        for i, link in enumerate((LinkMode.AUTO, LinkMode.COPY, LinkMode.STREAM)):
            src = local(tmp_path / f"src-{mode.value}-{i}", OLD)
            fill(src, closure_nodes())
            dst = local(tmp_path / f"dst-{mode.value}-{i}", "/opt/new")
            per_way.append((relocate(src, dst, [app_path()], mode=mode, link=link).paths, dst))
        first_paths, first_store = per_way[0]
        for paths, store in per_way[1:]:
            assert paths == first_paths
            for new in paths.values():
                assert nar_of(store, new) == nar_of(first_store, new)
                assert store.query_path_info(new).nar_hash == first_store.query_path_info(new).nar_hash
        outcomes.append(first_paths)
    assert outcomes[0] != outcomes[1]


def test_a_refusal_adds_nothing_and_lists_every_blocker(tmp_path: Path) -> None:
    src = memory(blob_grows=True)
    longer = "/opt/a-much-longer-store"
    for dst in (MemoryStore(StoreDir(longer)), local(tmp_path / "dst", longer)):
        with pytest.raises(RelocationError) as err:
            relocate(src, dst, [app_path()])
        files = [(f, o) for f, o, _ in err.value.blockers]
        lib_blob = f"{lib_path()}/lib/libfoo.so"
        assert (lib_blob, 8) in files  # in the library, which alone would have been fine to add
        assert [f for f, _ in files].count(f"{app_path()}/data") == 2
        assert dst.query_all_valid_paths() == set()
    assert relocate(src, MemoryStore(StoreDir("/opt/s")), [app_path()]).paths  # shorter: padded


def test_already_valid_paths_are_kept(tmp_path: Path) -> None:
    src, dst = memory(), MemoryStore(StoreDir("/opt/new"))
    relocate(src, dst, [lib_path()])
    seen: list[tuple[StorePath, int, int]] = []
    relocate(
        src, dst, [app_path()], progress=lambda e: seen.append((src.parse_path(e.item), e.done, e.total))
    )
    total = sum(src.query_path_info(p).nar_size for p in (lib_path(), app_path()))
    assert seen[-1] == (app_path(), total, total)
    assert dst.query_all_valid_paths() == {lib_path("/opt/new"), app_path("/opt/new")}


def test_plan_orders_references_first_and_refuses_what_it_cannot_do() -> None:
    src = memory()
    infos = {p: src.query_path_info(p) for p in src.query_all_valid_paths()}
    assert references_first(infos) == [lib_path(), app_path()]
    with pytest.raises(RelocationError, match="nested"):
        check_store_dirs(StoreDir("/opt/store"), StoreDir("/opt/store/inner"), Mode.KEEP_HASH)
    with pytest.raises(RelocationError, match="keep-hash has nothing"):
        relocate(src, MemoryStore(StoreDir(OLD)), [app_path()])
    drv = src.add_text("x.drv", b'Derive([],[],[],"","",[],[])')
    with pytest.raises(RelocationError, match="derivation"):
        relocate(src, MemoryStore(StoreDir("/opt/new")), [drv])


def test_a_self_referencing_content_addressed_path_imports_into_a_local_store(tmp_path: Path) -> None:
    """LocalStore checks a self-referencing path's content address modulo its own hash part, as Nix does."""
    ca_store = MemoryStore(StoreDir("/opt/new"))
    result = relocate(memory(), ca_store, [lib_path()], mode=Mode.CONTENT_ADDRESSED)
    new = result.paths[lib_path()]
    target = local(tmp_path / "copy", "/opt/new")
    target.add_from_nar(ca_store.query_path_info(new), io.BytesIO(nar_of(ca_store, new)))
    assert target.is_valid_path(new)


def test_relocating_store_pulls_a_closure_on_first_request() -> None:
    from storekit.transfer.relocating import RelocatingStore

    upstream, backing = memory(), MemoryStore(StoreDir("/opt/new"))
    view = RelocatingStore(backing, upstream)
    assert view.query_all_valid_paths() == set()
    found = view.query_path_from_hash_part(APP_HASH)
    assert found == app_path("/opt/new")
    assert backing.query_all_valid_paths() == {lib_path("/opt/new"), app_path("/opt/new")}
    assert b"/opt/new/" + LIB_HASH.encode() in nar_of(view, app_path("/opt/new"))
    assert view.query_path_from_hash_part("3" * 32) is None
    refused = RelocatingStore(MemoryStore(StoreDir("/opt/a-much-longer-store")), memory(blob_grows=True))
    assert refused.lookup_path_info(app_path("/opt/a-much-longer-store")) is None
    assert "refusing to relocate" in refused.refusals[str(app_path())]
