"""The overlay store: reads fall through to a read-only lower store (written by real Nix or by storekit),
writes go to the upper, upper paths reference lower paths, GC of an upper never touches the lower, and
GC of a lower shared by two uppers keeps every path an upper still references.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cache_helpers import build_closure, fresh_nix_store, nix_on, open_nix_store, side_spec, side_store
from nixoracle import NixStore

from storekit.errors import StoreError
from storekit.store.gc import add_root, collect_garbage
from storekit.store.local import LocalStore
from storekit.store.open import open_store
from storekit.store.overlay import OverlayStore
from storekit.store.overlay_roots import overlay_roots
from storekit.store.specs import OverlayStoreSpec
from storekit.storepath import StorePath

pytestmark = pytest.mark.interop


def by_name(store: LocalStore, top: StorePath) -> dict[str, StorePath]:
    return {p.name: p for p in store.closure([top])}


def overlay(lower_spec: object, upper_root: Path, store_dir: str) -> OverlayStore:
    opened = open_store(OverlayStoreSpec(lower_spec, side_spec(upper_root, store_dir)))  # type: ignore[arg-type]
    assert isinstance(opened, OverlayStore)
    return opened


def test_upper_paths_reference_lower_paths_written_by_nix(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as lower:
        paths = by_name(lower, top)
        lower_spec = lower.spec
    with overlay(lower_spec, tmp_path / "u1", nix_store.store_dir) as o:
        assert o.roots_registered
        assert o.is_valid_path(top) and o.query_path_info(top) == lower_info(nix_store, top)
        uses = o.add_text("uses-mid", f"{paths['mid']}/bin/run\n".encode(), [paths["mid"]])
        assert o.closure([uses]) == {uses, paths["mid"], paths["dep"]}
        assert os.path.isfile(o.upper.real_path(uses))
        # the lower paths are borrowed rows in the upper: no files there, the lower's files serve them
        assert o.upper.is_valid_path(paths["mid"]) and not os.path.lexists(o.upper.real_path(paths["mid"]))
        assert b"".join(o.nar_from_path(paths["mid"])) == b"".join(o.lower.nar_from_path(paths["mid"]))
        assert o.real_path(paths["mid"]) == o.lower.real_path(paths["mid"])  # type: ignore[attr-defined]
        # writing a path the lower has adds nothing to the upper
        again = o.add_text("uses-mid", f"{paths['mid']}/bin/run\n".encode(), [paths["mid"]])
        assert again == uses
        with pytest.raises(StoreError, match="read-only lower store"):
            o.delete([paths["top"]])
    # real Nix sees the upper path with its references
    upper_uri = fresh_nix_store(tmp_path / "u1", nix_store.store_dir)
    refs = nix_on(nix_store, upper_uri, "nix-store", "-q", "--references", str(uses)).stdout.split()
    assert refs == [str(paths["mid"])]


def lower_info(nix_store: NixStore, path: StorePath):  # type: ignore[no-untyped-def]
    with open_nix_store(nix_store) as lower:
        return lower.query_path_info(path)


def test_gc_of_an_upper_leaves_the_lower_untouched(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as lower:
        paths, lower_spec = by_name(lower, top), lower.spec
        before = lower.query_all_valid_paths()
    with overlay(lower_spec, tmp_path / "u1", nix_store.store_dir) as o:
        kept = o.add_text("kept", f"{paths['top']}\n".encode(), [paths["top"]])
        dead = o.add_text("dead", f"{paths['dep']}\n".encode(), [paths["dep"]])
        add_root(o.upper, kept, str(tmp_path / "result"))
        result = o.collect_garbage()
        assert str(dead) in result.paths and str(kept) not in result.paths
        assert not o.is_valid_path(dead) and o.is_valid_path(kept)
        assert o.closure([kept]) == {kept, *paths.values()}
    with open_nix_store(nix_store) as lower:
        assert lower.query_all_valid_paths() == before
    nix_store.run("nix-store", "--verify", "--check-contents")


def test_verify_of_an_overlay_checks_the_upper_and_keeps_its_borrowed_rows(
    nix_store: NixStore, tmp_path: Path
) -> None:
    """Borrowed rows have no files in the upper: verifying must neither drop them nor call them vanished."""
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as lower:
        paths, lower_spec = by_name(lower, top), lower.spec
    with overlay(lower_spec, tmp_path / "u1", nix_store.store_dir) as o:
        uses = o.add_text("uses-top", f"{paths['top']}\n".encode(), [paths["top"]])
        report = o.verify(check_contents=True)
        assert report.ok and report.fixed == () and report.checked == 4  # uses-top + 3 borrowed
        assert o.upper.is_valid_path(paths["dep"]) and o.closure([uses]) == {uses, *paths.values()}
        # an upper path whose file is modified is caught, in Nix's words
        real = Path(o.upper.real_path(uses))
        real.chmod(0o644)
        real.write_text("tampered\n")
        assert any(f"path '{uses}' was modified" in e for e in o.verify(check_contents=True).errors)
    # through the CLI, as a user runs it
    spec = str(OverlayStoreSpec(lower_spec, side_spec(tmp_path / "u1", nix_store.store_dir)))
    out = subprocess.run(
        [sys.executable, "-m", "storekit", "store", "verify", "--check-contents", "--store", spec, "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 1 and json.loads(out.stdout)["checked"] == 4, out.stderr


@pytest.mark.parametrize("writer", ["nix", "storekit"])
def test_gc_of_a_shared_lower_keeps_what_each_upper_references(
    nix_store: NixStore, tmp_path: Path, writer: str
) -> None:
    a, b = lower_closures(nix_store, tmp_path, writer)
    with open_store_of(nix_store, tmp_path, writer) as lower:
        lower_spec = lower.spec
    with overlay(lower_spec, tmp_path / "u1", nix_store.store_dir) as o1:
        x = o1.add_text("x", b"uses a's middle", [a["mid"]])
        add_root(o1.upper, x, str(tmp_path / "x-root"))
    with overlay(lower_spec, tmp_path / "u2", nix_store.store_dir) as o2:
        y = o2.add_text("y", b"uses b's top", [b["top"]])
        add_root(o2.upper, y, str(tmp_path / "y-root"))
    with open_store_of(nix_store, tmp_path, writer) as lower:
        assert overlay_roots(lower) == {a["mid"], a["dep"], b["top"], b["mid"], b["dep"]}
        collect_garbage(lower)
        valid = lower.query_all_valid_paths()
        assert a["top"] not in valid and not os.path.exists(lower.real_path(a["top"]))
        assert {a["mid"], a["dep"], b["top"], b["mid"], b["dep"]} <= valid
    # the first upper lets go of its path: the lower may now collect what only it held
    os.unlink(tmp_path / "x-root")
    with overlay(lower_spec, tmp_path / "u1", nix_store.store_dir) as o1:
        o1.collect_garbage()
        assert not o1.upper.is_valid_path(a["mid"])  # the borrowed rows went with `x`
    with open_store_of(nix_store, tmp_path, writer) as lower:
        collect_garbage(lower)
        valid = lower.query_all_valid_paths()
        assert a["mid"] not in valid and a["dep"] not in valid
        assert {b["top"], b["mid"], b["dep"]} <= valid
    if writer == "nix":
        nix_store.run("nix-store", "--verify", "--check-contents")


def open_store_of(nix_store: NixStore, tmp_path: Path, writer: str) -> LocalStore:
    if writer == "nix":
        return open_nix_store(nix_store)
    return side_store(tmp_path / "lower", nix_store.store_dir)


def lower_closures(nix_store: NixStore, tmp_path: Path, writer: str) -> tuple[dict[str, StorePath], ...]:
    """Two unrooted three-path closures in the lower store, built by real Nix or added by storekit."""
    if writer == "nix":
        with open_nix_store(nix_store) as lower:
            return tuple(by_name(lower, build_closure(nix_store, salt)) for salt in ("a", "b"))
    closures = []
    with side_store(tmp_path / "lower", nix_store.store_dir) as lower:
        for salt in ("a", "b"):
            tree = tmp_path / f"tree-{salt}"
            tree.mkdir()
            (tree / "file").write_text(salt)
            dep = lower.add_path(str(tree), "dep")
            mid = lower.add_text("mid", f"{dep}".encode(), [dep])
            top = lower.add_text("top", f"{mid}".encode(), [mid])
            closures.append({"dep": dep, "mid": mid, "top": top})
    return tuple(closures)


def test_an_upper_in_the_lower_dir_is_refused(nix_store: NixStore, tmp_path: Path) -> None:
    with open_nix_store(nix_store) as lower:
        spec = lower.spec
    upper = side_spec(tmp_path / "u", nix_store.store_dir)
    same_dir = type(upper)(upper.store_dir, upper.state_dir, upper.log_dir, spec.real_dir)
    with pytest.raises(StoreError, match="its own"):
        open_store(OverlayStoreSpec(spec, same_dir))


def test_a_vanished_upper_is_forgotten(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as lower:
        paths, spec = by_name(lower, top), lower.spec
    with overlay(spec, tmp_path / "u", nix_store.store_dir) as o:
        o.add_text("x", b"x", [paths["dep"]])
    with open_nix_store(nix_store) as lower:
        assert overlay_roots(lower) == {paths["dep"]}
        for name in ("db.sqlite", "db.sqlite-wal", "db.sqlite-shm"):
            with_suffix = tmp_path / "u" / "var" / "nix" / "db" / name
            if with_suffix.exists():
                with_suffix.unlink()
        assert overlay_roots(lower) == set()
        assert os.listdir(os.path.join(lower.state_dir, "overlay-uppers")) == []
