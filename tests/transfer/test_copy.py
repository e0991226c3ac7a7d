"""`copy_closure` and `storekit copy`: closures, missing paths only, dependency order, links between
local stores (checked by real Nix's `--verify --check-contents`), signatures, substituters, refusals.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cache_helpers import build_closure, fresh_nix_store, nix_key, nix_on, open_nix_store, side_store
from nixoracle import NixStore

from storekit.cli import main
from storekit.errors import HashMismatch, RelocationError, SignatureError
from storekit.progress import ProgressEvent
from storekit.signing import SecretKey
from storekit.store.memory import MemoryStore
from storekit.store.open import open_store
from storekit.store.substituters import SignaturePolicy, Substituters
from storekit.storepath import StoreDir
from storekit.transfer.copy import LinkMode, copy_closure

pytestmark = pytest.mark.interop


def regular_files(root: str) -> dict[str, os.stat_result]:
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                found[os.path.relpath(path, root)] = os.stat(path)
    return found


@pytest.mark.parametrize("link", [LinkMode.AUTO, LinkMode.COPY, LinkMode.STREAM])
def test_local_to_local_copy_is_verified_by_nix(nix_store: NixStore, tmp_path: Path, link: LinkMode) -> None:
    top = build_closure(nix_store)
    events: list[ProgressEvent] = []
    with open_nix_store(nix_store) as src, side_store(tmp_path / "b", nix_store.store_dir) as dst:
        result = copy_closure(src, dst, [top], link=link, progress=events.append)
        closure = src.closure([top])
        assert set(result.copied) == closure and dst.closure([top]) == closure
        for path in closure:
            assert dst.query_path_info(path).nar_hash == src.query_path_info(path).nar_hash
            theirs, ours = regular_files(src.real_path(path)), regular_files(dst.real_path(path))
            assert theirs.keys() == ours.keys()
            shared = {name for name in ours if ours[name].st_ino == theirs[name].st_ino}
            assert shared == (set(ours) if link is LinkMode.AUTO else set())
        # references become valid before their referrers
        made_valid, count = [], 0  # a path is valid when the event's "k/N paths" count goes up
        for e in events:
            k = int(e.message.split("/")[0])
            if k > count:
                made_valid.append(src.parse_path(e.item))
                count = k
        assert [p.name for p in made_valid] == ["dep", "mid", "top"]
        assert events[-1].done == events[-1].total == result.nar_bytes
        assert events[-1].message == "3/3 paths" and all(e.unit == "bytes" for e in events)
        # a streamed NAR reports its bytes as they move, before its path is valid; links all at once
        assert [e.done for e in events] == sorted(e.done for e in events)
        assert (len(events) > 3) if link is LinkMode.STREAM else (len(events) == 3)
        again = copy_closure(src, dst, [top], link=link)
        assert again.copied == () and set(again.already_valid) == closure
    target = fresh_nix_store(tmp_path / "b", nix_store.store_dir)
    nix_on(nix_store, target, "nix-store", "--verify", "--check-contents")
    assert nix_on(nix_store, target, "nix-store", "-qR", str(top)).stdout.split() == [
        str(p) for p in made_valid
    ]


def test_a_damaged_source_file_is_refused_when_linking(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as src, side_store(tmp_path / "b", nix_store.store_dir) as dst:
        zeros = os.path.join(src.real_path(top), "zeros")
        os.chmod(src.real_path(top), 0o755)
        os.chmod(zeros, 0o644)
        with open(zeros, "r+b") as f:
            f.write(b"X")
        with pytest.raises(HashMismatch) as caught:
            copy_closure(src, dst, [top])
        assert str(top) in str(caught.value) and "linked from" in str(caught.value)
        assert str(src.query_path_info(top).nar_hash) in str(caught.value)
        assert not dst.is_valid_path(top)
        assert not os.path.exists(dst.real_path(top))


def test_another_store_dir_needs_relocation(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    with (
        open_nix_store(nix_store) as src,
        side_store(tmp_path / "b", str(tmp_path / "other" / "store")) as dst,
    ):
        with pytest.raises(RelocationError) as caught:
            copy_closure(src, dst, [top])
        assert "relocation" in str(caught.value) and nix_store.store_dir in str(caught.value)
        assert dst.query_all_valid_paths() == set()


def test_sign_keys_sign_what_is_copied(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    key = SecretKey.generate("copy-test-1")
    with open_nix_store(nix_store) as src, side_store(tmp_path / "b", nix_store.store_dir) as dst:
        copy_closure(src, dst, [top], sign_keys=[key])
        policy = SignaturePolicy({key.name: key.public_key()})
        assert all(policy.good_signatures(dst.query_path_info(p)) for p in dst.closure([top]))
    target = fresh_nix_store(tmp_path / "b", nix_store.store_dir)
    public = str(key.public_key())
    nix_on(nix_store, target, "nix", "store", "verify", "--trusted-public-keys", public, "-r", str(top))
    wrong = str(SecretKey.generate("copy-test-1").public_key())
    failed = nix_on(
        nix_store, target, "nix", "store", "verify", "--trusted-public-keys", wrong, str(top), check=False
    )
    assert failed.returncode != 0


def test_substituters_serve_each_path_from_the_first_that_has_it(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as nix:
        closure = nix.closure([top])
        mid = next(p for p in closure if p.name == "mid")
        first, second = MemoryStore(StoreDir(nix_store.store_dir)), MemoryStore(StoreDir(nix_store.store_dir))
        copy_closure(nix, first, [mid])  # dep and mid
        copy_closure(nix, second, [top])  # all three
    union = Substituters([first, second])
    assert union.find(mid)[0] is first and union.find(top)[0] is second  # type: ignore[index]
    sources = {}
    with side_store(tmp_path / "b", nix_store.store_dir) as dst:
        copy_closure(
            union, dst, [top], progress=lambda e: sources.__setitem__(dst.parse_path(e.item).name, e.source)
        )
        assert dst.closure([top]) == closure
    assert sources == {"dep": first.uri, "mid": first.uri, "top": second.uri}


def test_a_memory_destination_gets_the_stream(nix_store: NixStore) -> None:
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as src:
        dst = MemoryStore(StoreDir(nix_store.store_dir))
        copy_closure(src, dst, [top], jobs=1)
        assert dst.closure([top]) == src.closure([top])
        assert b"".join(dst.nar_from_path(top)) == b"".join(src.nar_from_path(top))


# --- the command -----------------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`storekit ARGS` in-process through the real error boundary; (exit status, stdout + stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_storekit_copy_to_a_signed_cache_and_back(nix_store: NixStore, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    top = build_closure(nix_store)
    key_file, public = nix_key(nix_store, tmp_path, "cli-1")
    cache = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}"
    code, output = run(
        capsys, "copy", "--from", nix_store.store_dir, "--to", cache, "--sign-key", str(key_file), str(top)
    )
    assert code == 0, output
    assert "copied 3 paths" in output
    back = f"local?store={nix_store.store_dir}&state={tmp_path / 'b/var/nix'}&real={tmp_path / 'b/store'}"
    code, output = run(capsys, "copy", "--from", cache, "--to", back, str(top))
    assert code == 1 and "error: cannot add path" in output and "lacks a valid signature" in output
    code, output = run(
        capsys, "copy", "--from", cache, "--to", back, "--trusted-public-keys", public, str(top)
    )
    assert code == 0, output
    code, output = run(
        capsys, "copy", "-q", "--from", cache, "--to", back, "--trusted-public-keys", public, str(top)
    )
    assert code == 0 and output == ""
    target = fresh_nix_store(tmp_path / "b", nix_store.store_dir)
    nix_on(nix_store, target, "nix", "store", "verify", "--trusted-public-keys", public, "-r", str(top))
    rows = json.loads(nix_on(nix_store, target, "nix", "path-info", "--json", "-r", str(top)).stdout)
    assert len(rows) == 3


def test_storekit_copy_refuses_untrusted_paths_without_copying_any(
    nix_store: NixStore, tmp_path: Path
) -> None:
    top = build_closure(nix_store)
    cache = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}"
    with open_nix_store(nix_store) as src, open_store(cache) as dst:
        copy_closure(src, dst, [top])  # unsigned
    with side_store(tmp_path / "b", nix_store.store_dir) as dst, open_store(cache) as src:
        with pytest.raises(SignatureError):
            copy_closure(src, dst, [top])
        assert dst.query_all_valid_paths() == set()
        result = copy_closure(src, dst, [top], policy=SignaturePolicy(require_sigs=False))
        assert len(result.copied) == 3


def test_storekit_copy_trusts_the_config_files_keys(  # type: ignore[no-untyped-def]
    nix_store: NixStore, tmp_path: Path, capsys, monkeypatch
) -> None:
    top = build_closure(nix_store)
    key_file, public = nix_key(nix_store, tmp_path, "config-1")
    cache = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}&secret-key={key_file}"
    with open_nix_store(nix_store) as src, open_store(cache) as dst:
        copy_closure(src, dst, [top])
    back = f"local?store={nix_store.store_dir}&state={tmp_path / 'b/var/nix'}&real={tmp_path / 'b/store'}"
    source = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    code, output = run(capsys, "copy", "-q", "--from", source, "--to", back, str(top))
    assert code == 1 and "lacks a valid signature" in output
    (tmp_path / "config" / "storekit").mkdir(parents=True)
    (tmp_path / "config" / "storekit" / "config.toml").write_text(f'trusted-public-keys = ["{public}"]\n')
    code, output = run(capsys, "copy", "-q", "--from", source, "--to", back, str(top))
    assert code == 0, output


def test_a_cache_named_without_its_store_dir_says_how_to_name_it(
    nix_store: NixStore,
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    top = build_closure(nix_store)
    cache = f"file://{tmp_path / 'cache'}"
    code, output = run(capsys, "copy", "--from", nix_store.store_dir, "--to", cache, str(top))
    assert code == 1
    assert "is for store dir /nix/store (the default when a cache's URI names none)" in output
    assert f"'{cache}?store={nix_store.store_dir}'" in output and "--relocate" not in output
    code, output = run(capsys, "copy", "--from", cache, "--to", nix_store.store_dir, str(top))
    assert code == 1 and f"'{cache}?store={nix_store.store_dir}'" in output
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.narinfo"))


def test_the_summary_counts_paths_in_english(nix_store: NixStore, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as src:
        dep = next(p for p in src.closure([top]) if p.name == "dep")
        size = src.query_path_info(dep).nar_size
    cache = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}"
    code, output = run(capsys, "copy", "--from", nix_store.store_dir, "--to", cache, str(dep))
    assert code == 0 and f"copied 1 path ({size / 2**20:.2f} MiB) to '{cache}'; 0 already there" in output
