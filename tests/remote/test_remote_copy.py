"""`storekit copy --to/--from ssh://…` with real Nix 2.8's `nix-store --serve --write` on the far side,
and what goes wrong on the way: dropped connections, damaged NARs, another store dir, a far side that
does not speak the protocol (a chatty shell start-up file, an unknown version)."""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from remote_fixtures import Far, error_line, far_env, make_far, spec_of, storekit, storekit_store
from sshd_server import Sshd

from storekit.errors import StoreError
from storekit.remote.store import open_ssh_store
from storekit.store.local import LocalStore
from storekit.storepath import StorePath

pytestmark = pytest.mark.interop


def closure(store: LocalStore, tmp: Path) -> tuple[StorePath, StorePath]:
    """top -> dep (a text path) and a 2 MiB tree, so a transfer takes more than one read."""
    tree = tmp / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "big").write_bytes(os.urandom(2 << 20))
    (tree / "run").write_text("#!/bin/sh\necho hi\n")
    (tree / "run").chmod(0o755)
    os.symlink("sub/big", tree / "link")
    big = store.add_path(str(tree), "tree")
    dep = store.add_text("dep", b"a dependency\n")
    top = store.add_text("top", f"{dep} {big}\n".encode(), [dep, big])
    return top, big


@pytest.fixture
def sides(sshd: Sshd, tmp_path: Path) -> tuple[Far, LocalStore]:
    store_dir = str(tmp_path / "shared" / "store")
    return make_far(sshd, tmp_path / "far", store_dir), storekit_store(tmp_path / "sk", store_dir)


def test_push_then_pull_round_trip(sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path) -> None:
    far, store = sides
    top, big = closure(store, tmp_path)
    infos = {p: store.query_path_info(p) for p in store.closure([top])}
    out = storekit(sshd, "copy", "--from", spec_of(store), "--to", far.uri(), str(top), "--json")
    assert sorted(json.loads(out.stdout)["copied"]) == sorted(map(str, infos))
    for path, info in infos.items():  # real Nix has each path, with our NAR hash and references
        assert far.nar_hash(str(path)) == str(info.nar_hash)
        refs = far.nix.text("nix-store", "-q", "--references", str(path)).split()
        assert sorted(refs) == sorted(map(str, info.references))
    far.nix.run("nix-store", "--verify", "--check-contents")
    # the same closure comes back into an empty store, byte for byte
    back = storekit_store(tmp_path / "back", store.store_dir.path)
    storekit(sshd, "copy", "--from", far.uri(), "--to", spec_of(back), str(top))
    for path, info in infos.items():
        got = back.query_path_info(path)
        assert (got.nar_hash, got.nar_size, got.references) == (info.nar_hash, info.nar_size, info.references)
    assert (
        Path(back.real_path(big), "sub", "big").read_bytes()
        == Path(store.real_path(big), "sub", "big").read_bytes()
    )
    # a second push finds everything there
    again = storekit(sshd, "copy", "--from", spec_of(store), "--to", far.uri(), str(top), "--json")
    assert json.loads(again.stdout)["copied"] == []


def test_uri_parameters_host_key_and_compression(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    top, _ = closure(store, tmp_path)
    params = {"compress": "true", "max-connections": "2"}
    uri = far.uri(**params, **{"base64-ssh-public-host-key": sshd.base64_host_key()})
    storekit(sshd, "copy", "--from", spec_of(store), "--to", uri, str(top))
    assert far.valid(str(top))
    # only the key given is accepted: another host key is refused by ssh
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = base64.b64encode(other.with_suffix(".pub").read_bytes()).decode()
    dep = store.add_text("another", b"another\n")
    failed = storekit(
        sshd, "copy", "--from", spec_of(store), "--to",
        far.uri(**{"base64-ssh-public-host-key": wrong}), str(dep), check=False,
    )  # fmt: skip
    assert "Host key verification failed" in error_line(failed) and not far.valid(str(dep))


def test_dropped_push_leaves_nothing_valid_and_a_retry_succeeds(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    top, big = closure(store, tmp_path)
    cut = far.wrapped(f'{far.cutter()} 300000 | exec "$NIX_STORE_PROGRAM" "$@"')  # the link dies mid-NAR
    failed = storekit(sshd, "copy", "--from", spec_of(store), "--to", far.uri(cut), str(top), check=False)
    assert failed.returncode == 1
    assert "ssh://" in error_line(failed) or sshd.host in error_line(failed)
    assert not far.valid(str(big)) and not far.valid(str(top))
    storekit(sshd, "copy", "--from", spec_of(store), "--to", far.uri(), str(top))
    assert far.valid(str(top)) and far.nar_hash(str(big)) == str(store.query_path_info(big).nar_hash)
    far.nix.run("nix-store", "--verify-path", str(big))


def test_dropped_pull_leaves_nothing_valid_and_a_retry_succeeds(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    top, big = closure(store, tmp_path)
    storekit(sshd, "copy", "--from", spec_of(store), "--to", far.uri(), str(top))
    back = storekit_store(tmp_path / "back", store.store_dir.path)
    cut = far.wrapped(f'"$NIX_STORE_PROGRAM" "$@" | {far.cutter()} 300000')
    failed = storekit(sshd, "copy", "--from", far.uri(cut), "--to", spec_of(back), str(top), check=False)
    assert failed.returncode == 1 and "connection was lost" in error_line(failed)
    assert not back.is_valid_path(big) and not back.is_valid_path(top)
    assert not os.path.lexists(back.real_path(big))
    storekit(sshd, "copy", "--from", far.uri(), "--to", spec_of(back), str(top))
    assert back.query_path_info(big).nar_hash == store.query_path_info(big).nar_hash


def test_a_damaged_far_path_is_refused_naming_both_hashes(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    top, _ = closure(store, tmp_path)
    dep = next(p for p in store.query_references(top) if p.name == "dep")
    storekit(sshd, "copy", "--from", spec_of(store), "--to", far.uri(), str(top))
    damaged = Path(str(dep))
    os.chmod(damaged, 0o644)
    damaged.write_bytes(b"a dependencY\n")  # same size, other bytes: the registered hash is now wrong
    back = storekit_store(tmp_path / "back", store.store_dir.path)
    failed = storekit(sshd, "copy", "--from", far.uri(), "--to", spec_of(back), str(dep), check=False)
    line = error_line(failed)
    assert (
        str(store.query_path_info(dep).nar_hash) in line
        and "sha256:" in line.split(str(store.query_path_info(dep).nar_hash))[-1]
    )
    assert not back.is_valid_path(dep)


def test_a_far_side_with_another_store_dir_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    far = make_far(sshd, tmp_path / "far", str(tmp_path / "far-dir" / "store"))
    store = storekit_store(tmp_path / "sk", str(tmp_path / "near-dir" / "store"))
    top, _ = closure(store, tmp_path)
    failed = storekit(sshd, "copy", "--from", spec_of(store), "--to", far.uri(), str(top), check=False)
    line = error_line(failed)
    assert f"store dir '{store.store_dir}'" in line and "another store dir" in line
    assert "is not in the Nix store" in line  # what the far side said


def test_a_chatty_shell_start_up_file_gets_a_clear_error(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    top, _ = closure(store, tmp_path)
    chatty = far.wrapped('echo "Welcome to the build farm!"\nexec "$NIX_STORE_PROGRAM" "$@"')
    failed = storekit(
        sshd, "copy", "--from", spec_of(store), "--to", far.uri(chatty), str(top), check=False, timeout=120
    )
    line = error_line(failed)
    assert "protocol mismatch" in line and "printed 'Welcome to the build farm!' instead" in line
    assert "shell start-up file" in line


def test_an_unknown_protocol_version_gets_one_line(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    far, store = sides
    top, _ = closure(store, tmp_path)
    answer = 'struct.pack("<QQ", 0x5452EECB, 0x305)'  # magic 2, then version 3.5
    future = far.wrapped(
        "exec python3 -c 'import sys, struct; sys.stdin.buffer.read(16); "
        f"sys.stdout.buffer.write({answer}); sys.stdout.flush(); sys.stdin.buffer.read()'"
    )
    failed = storekit(
        sshd, "copy", "--from", spec_of(store), "--to", far.uri(future), str(top), check=False, timeout=120
    )
    assert failed.stderr.count("\n") == 1
    line = error_line(failed)
    assert "serve protocol version 3.5" in line and sshd.host in line


def test_an_unreachable_host_says_so(sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path) -> None:
    far, store = sides
    top, _ = closure(store, tmp_path)
    missing = far.uri(program=Path("/nonexistent/nix-store"))
    failed = storekit(sshd, "copy", "--from", spec_of(store), "--to", missing, str(top), check=False)
    line = error_line(failed)
    assert "cannot connect" in line and "/nonexistent/nix-store" in line


def test_a_short_nar_cuts_the_connection_and_the_next_add_works(
    sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path
) -> None:
    """A source that ends before the declared NAR size must not leave the far side reading our next
    command as NAR bytes: the connection is cut, nothing is valid there, the next copy reconnects."""
    far, store = sides
    dep = store.add_text("dep", b"a dependency\n")
    info = store.query_path_info(dep)
    nar = b"".join(store.nar_from_path(dep))
    with open_ssh_store(far.uri(), store.store_dir, shlex.join(sshd.ssh_options())) as remote:
        with pytest.raises(StoreError, match="ended 8 bytes before"):
            remote.add_from_nar(info, io.BytesIO(nar[:-8]))
        assert not far.valid(str(dep))
        remote.add_from_nar(info, io.BytesIO(nar))
        assert far.valid(str(dep)) and remote.lookup_path_info(dep) == info.replace(registration_time=0)


def test_remote_store_names_the_far_store(sshd: Sshd, sides: tuple[Far, LocalStore], tmp_path: Path) -> None:
    """A far `nix-store` that knows no store of its own is given one with `remote-store` (`--store`)."""
    far, store = sides
    top, _ = closure(store, tmp_path)
    env = {
        k: v for k, v in far_env(far.nix).items() if not k.startswith(("NIX_STORE", "NIX_STATE", "NIX_LOG"))
    }
    plain = sshd.wrapper(f"plain-nix-store-{tmp_path.name}", "/usr/bin/nix-store", env)
    uri = far.uri(plain, **{"remote-store": urllib.parse.quote(far.nix.uri, safe="/")})
    storekit(sshd, "copy", "--from", spec_of(store), "--to", uri, str(top))
    assert far.valid(str(top))
