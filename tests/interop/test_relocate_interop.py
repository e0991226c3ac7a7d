"""Relocation of a closure built by real Nix 2.8, checked by real Nix and by running the programs.

The closure (built once per module by `nix-build`, sandbox off, gcc from the host): `libgreet` (a
shared library), `greeter` (a program whose RUNPATH names its own `lib` and libgreet's, a shell
script printing its own path, a symlink into libgreet); `blob` (an opaque binary holding its own
path between NUL bytes); `selfaware` (a program with its own path in `.rodata`). Each is relocated to
a longer, a shorter and an equal-length store dir in both modes, then run from the new store with
the old store dir moved away, and checked with `nix-store --verify --check-contents` and
`nix store verify` (no signatures) against the new store. Both ways of staging are run: file to
file (the local fast path) and through NAR streams (what any other pair of stores uses).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nixoracle import NixStore, make_nix_store

from storekit.cli import main
from storekit.elf.fs import read_facts
from storekit.errors import RelocationError
from storekit.nar.fs import dump_path
from storekit.relocate import Mode, relocate
from storekit.store.content_address import ContentAddress
from storekit.store.link import LinkMode
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for
from storekit.storepath import StorePath

pytestmark = pytest.mark.interop

CLOSURE_NIX = r"""
let
  build = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" ("set -e\n" + script) ];
  };
  libgreet = build "libgreet" ''
    mkdir -p $out/lib
    printf '%s\n' 'const char *greet(void) { return "hello from libgreet"; }' > greet.c
    gcc -shared -fPIC -Wl,-soname,libgreet.so -o $out/lib/libgreet.so greet.c
  '';
in {
  inherit libgreet;
  greeter = build "greeter" ''
    mkdir -p $out/bin $out/lib
    printf '%s\n' '#include <stdio.h>' 'const char *greet(void);' \
      'int main(void) { puts(greet()); return 0; }' > main.c
    gcc -o $out/bin/greeter main.c -L${libgreet}/lib -lgreet \
      -Wl,-rpath,$out/lib:${libgreet}/lib -Wl,--enable-new-dtags
    printf '#!/bin/sh\necho "I live in %s"\n' "$out" > $out/bin/whereami
    chmod +x $out/bin/whereami
    ln -s ${libgreet}/lib/libgreet.so $out/lib/libgreet.so
  '';
  blob = build "blob" ''
    mkdir -p $out/share
    printf 'BLOB\0\001\002%s\0tail' "$out" > $out/share/blob.bin
  '';
  selfaware = build "selfaware" ''
    mkdir -p $out/bin
    printf '%s\n' '#include <stdio.h>' 'int main(void) { puts(SELF); return 0; }' > self.c
    gcc -o $out/bin/selfaware -DSELF="\"$out\"" self.c
  '';
}
"""


class Built:
    def __init__(self, nix: NixStore, paths: dict[str, str]) -> None:
        self.nix = nix
        self.paths = paths

    @property
    def store_dir(self) -> str:
        return self.nix.store_dir

    def open(self) -> LocalStore:
        return LocalStore(local_spec_for(self.store_dir, state_dir=str(self.nix.state_dir)))

    def path(self, name: str) -> StorePath:
        with self.open() as store:
            return store.parse_path(self.paths[name])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("reloc")
    nix = make_nix_store(root / "src")
    expr = root / "closure.nix"
    expr.write_text(CLOSURE_NIX)
    paths = {}
    for name in ("libgreet", "greeter", "blob", "selfaware"):
        paths[name] = nix.text("nix-build", str(expr), "-A", name, "--no-out-link")
    return Built(nix, paths)


@pytest.fixture
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short directory for destination stores (a test's tmp_path is longer than the source's)."""
    return tmp_path_factory.mktemp("x")


def dest_dir(built: Built, base: Path, length: str) -> str:
    """A store dir longer, shorter or as long as the source's, sharing no substring with it."""
    old = len(built.store_dir)
    if length == "longer":
        new = f"{base}/longer-destination/store-of-a-longer-name"
    elif length == "shorter":
        new = f"{base}/d/s"
    else:
        new = f"{base}/{'e' * (old - len(str(base)) - len('//store'))}/store"
    assert {"longer": len(new) > old, "shorter": len(new) < old, "equal": len(new) == old}[length]
    assert built.store_dir not in new and new not in built.store_dir
    return new


def open_dest(store_dir: str) -> tuple[LocalStore, NixStore]:
    root = Path(store_dir).parent
    spec = local_spec_for(store_dir)
    nix = NixStore(root=root, store_dir=store_dir)
    assert spec.state_dir == str(nix.state_dir)
    return LocalStore(spec), nix


@contextlib.contextmanager
def old_store_hidden(built: Built) -> Iterator[None]:
    """Move the source store dir away, so a program that still used it would fail."""
    hidden = built.store_dir + ".hidden"
    os.rename(built.store_dir, hidden)
    try:
        yield
    finally:
        os.rename(hidden, built.store_dir)


def run(*argv: str) -> str:
    proc = subprocess.run(
        argv, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "LD_BIND_NOW": "1"}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def files_of(path: str) -> Iterator[tuple[str, bytes]]:
    """Every file's contents and every symlink's target under `path`."""
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                yield full, os.fsencode(os.readlink(full))
            elif os.path.isfile(full):
                yield full, Path(full).read_bytes()


def nix_verifies(nix: NixStore) -> None:
    out = subprocess.run(
        ["nix-store", "--store", nix.uri, "--verify", "--check-contents"],
        capture_output=True, text=True, env=nix.env(),
    )  # fmt: skip
    assert out.returncode == 0 and "modified" not in out.stderr and "error" not in out.stderr, out.stderr
    nix.run("nix", "store", "verify", "--all", "--sigs-needed", "0")
    # no signatures at all: content-addressed paths are trusted for their names, keep-hash ones are ultimate
    nix.run("nix", "store", "verify", "--all")


@pytest.mark.parametrize("link", [LinkMode.AUTO, LinkMode.STREAM], ids=["files", "nar"])
@pytest.mark.parametrize("mode", [Mode.KEEP_HASH, Mode.CONTENT_ADDRESSED], ids=lambda m: m.value)
@pytest.mark.parametrize("length", ["longer", "shorter", "equal"])
def test_closure_relocates_runs_and_verifies(
    built: Built, base: Path, length: str, mode: Mode, link: LinkMode
) -> None:
    new_dir = dest_dir(built, base, length)
    greeter, libgreet = built.path("greeter"), built.path("libgreet")
    dst, dst_nix = open_dest(new_dir)
    with built.open() as src, dst:
        result = relocate(src, dst, [greeter], mode=mode, link=link)
        new_greeter, new_lib = result.paths[greeter], result.paths[libgreet]
        assert set(result.paths) == {greeter, libgreet}
        assert {str(p.store_dir) for p in result.paths.values()} == {new_dir}
        if mode is Mode.KEEP_HASH:
            assert (new_greeter.hash_part, new_lib.hash_part) == (greeter.hash_part, libgreet.hash_part)
        else:
            for new in (new_greeter, new_lib):
                info = dst.query_path_info(new)
                assert info.ca is not None and info.deriver is None and not info.sigs
                assert (
                    ContentAddress.parse(info.ca).store_path(dst.store_dir, new.name, info.references, new)
                    == new
                )
        assert dst.query_path_info(new_greeter).references == {new_greeter, new_lib}
    g = str(new_greeter)
    with old_store_hidden(built):
        assert run(f"{g}/bin/greeter") == "hello from libgreet\n"
        assert run(f"{g}/bin/whereami") == f"I live in {g}\n"
        assert os.readlink(f"{g}/lib/libgreet.so") == f"{new_lib}/lib/libgreet.so"
    # a shorter store dir is padded on the left with "/": the same directories
    assert re.sub("/+", "/", read_facts(f"{g}/bin/greeter").runpath or "") == f"{g}/lib:{new_lib}/lib"
    old = built.store_dir.encode()
    for p in (new_greeter, new_lib):
        for f, data in files_of(str(p)):
            assert old not in data, f
    nix_verifies(dst_nix)


@pytest.mark.parametrize("length", ["shorter", "equal", "longer"])
def test_keep_hash_there_and_back_gives_the_original_bytes(
    built: Built, base: Path, tmp_path: Path, length: str
) -> None:
    greeter = built.path("greeter")
    there, _ = open_dest(dest_dir(built, base, length))
    back = LocalStore(
        local_spec_for(
            built.store_dir,
            state_dir=str(tmp_path / "back" / "var"),
            real_dir=str(tmp_path / "back" / "real"),
        )
    )
    with built.open() as src, there, back:
        moved = relocate(src, there, [greeter]).paths
        returned = relocate(there, back, [moved[greeter]]).paths
        for old in moved:
            assert returned[moved[old]] == old
            original = b"".join(dump_path(os.path.join(built.store_dir, old.base_name)))
            assert b"".join(back.nar_from_path(old)) == original
            assert back.query_path_info(old).nar_hash == src.query_path_info(old).nar_hash


def test_opaque_binary_that_would_grow_is_refused_by_name_and_offset(built: Built, base: Path) -> None:
    blob = built.path("blob")
    data = Path(built.paths["blob"], "share", "blob.bin").read_bytes()
    offset = data.index(built.store_dir.encode())
    new_dir = dest_dir(built, base, "longer")
    dst, _ = open_dest(new_dir)
    with built.open() as src, dst, pytest.raises(RelocationError) as err:
        relocate(src, dst, [blob])
    assert err.value.blockers == ((f"{blob}/share/blob.bin", offset, err.value.blockers[0][2]),)
    assert f"{blob}/share/blob.bin at offset {offset}" in str(err.value)
    assert "would grow" in err.value.blockers[0][2]
    again, _ = open_dest(new_dir)
    with again:
        assert again.query_all_valid_paths() == set()
    assert [n for n in os.listdir(new_dir) if n != ".links"] == []


def test_opaque_binary_is_padded_into_a_shorter_store_dir(built: Built, base: Path) -> None:
    blob = built.path("blob")
    new_dir = dest_dir(built, base, "shorter")
    dst, dst_nix = open_dest(new_dir)
    with built.open() as src, dst:
        new = relocate(src, dst, [blob]).paths[blob]
    old_data = Path(built.paths["blob"], "share", "blob.bin").read_bytes()
    new_data = Path(str(new), "share", "blob.bin").read_bytes()
    assert len(new_data) == len(old_data)
    pad = len(built.store_dir) - len(new_dir)
    assert new_data == old_data.replace(built.store_dir.encode(), b"/" * pad + new_dir.encode())
    nix_verifies(dst_nix)


def test_allow_unsafe_rewrites_what_would_grow(built: Built, base: Path) -> None:
    blob = built.path("blob")
    new_dir = dest_dir(built, base, "longer")
    dst, dst_nix = open_dest(new_dir)
    with built.open() as src, dst:
        result = relocate(src, dst, [blob], allow_unsafe=True)
    assert any("blob.bin" in w and "--allow-unsafe" in w for w in result.warnings)
    new_data = Path(str(result.paths[blob]), "share", "blob.bin").read_bytes()
    assert new_data == f"BLOB\0\x01\x02{result.paths[blob]}\0tail".encode()
    nix_verifies(dst_nix)


def test_elf_string_outside_the_dynamic_section_is_refused_with_its_section(built: Built, base: Path) -> None:
    selfaware = built.path("selfaware")
    dst, _ = open_dest(dest_dir(built, base, "longer"))
    with built.open() as src, dst, pytest.raises(RelocationError) as err:
        relocate(src, dst, [selfaware])
    ((where, _offset, why),) = err.value.blockers
    assert where == f"{selfaware}/bin/selfaware"
    assert "section .rodata" in why


def test_selfaware_program_runs_from_a_shorter_store_dir(built: Built, base: Path) -> None:
    selfaware = built.path("selfaware")
    new_dir = dest_dir(built, base, "shorter")
    dst, dst_nix = open_dest(new_dir)
    with built.open() as src, dst:
        new = relocate(src, dst, [selfaware], mode=Mode.CONTENT_ADDRESSED).paths[selfaware]
    printed = run(f"{new}/bin/selfaware").strip()
    assert printed.lstrip("/") == str(new).lstrip("/") and os.path.samefile(printed, str(new))
    nix_verifies(dst_nix)


def test_content_addressed_in_one_store_dir_is_nix_make_content_addressed(
    built: Built, tmp_path: Path
) -> None:
    """Without a store dir change, content-addressed mode must give Nix's own names and bytes."""
    import json

    greeter = built.path("greeter")
    nix = built.nix
    rewrites = json.loads(nix.run("nix", "store", "make-content-addressed", "--json", str(greeter)))[
        "rewrites"
    ]
    dst = LocalStore(
        local_spec_for(
            built.store_dir, state_dir=str(tmp_path / "ca" / "var"), real_dir=str(tmp_path / "ca" / "real")
        )
    )
    with built.open() as src, dst:
        ours = relocate(src, dst, [greeter], mode=Mode.CONTENT_ADDRESSED).paths
        assert str(ours[greeter]) == rewrites[str(greeter)]
        for new in ours.values():
            nix_info = json.loads(nix.run("nix", "path-info", "--json", str(new)))[0]
            info = dst.query_path_info(new)
            assert (nix_info["narHash"], nix_info["ca"]) == (info.nar_hash.sri, info.ca)
            assert b"".join(dst.nar_from_path(new)) == b"".join(src.nar_from_path(new))


def test_cli_prints_new_paths_in_order_and_refuses_with_exit_1(
    built: Built, base: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    new_dir = dest_dir(built, base, "shorter")
    src_spec = f"local?store={built.store_dir}&state={built.nix.state_dir}"
    argv = ["relocate", "--from", src_spec, "--to", new_dir, built.paths["libgreet"], built.paths["greeter"]]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code in (0, None)
    lines = capfd.readouterr().out.splitlines()
    assert lines == [
        p.replace(built.store_dir, new_dir) for p in (built.paths["libgreet"], built.paths["greeter"])
    ]
    longer = dest_dir(built, base, "longer")
    argv = [
        sys.executable,
        "-m",
        "storekit",
        "relocate",
        "--from",
        src_spec,
        "--to",
        longer,
        built.paths["blob"],
    ]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: refusing to relocate") and "share/blob.bin at offset" in proc.stderr


# --- relocating substitution ----------------------------------------------------------------------------


def nix_key(nix: NixStore, tmp: Path, name: str) -> tuple[Path, str]:
    secret = nix.run("nix", "key", "generate-secret", "--key-name", name, store_flag=False)
    public = nix.run("nix", "key", "convert-secret-to-public", input=secret, store_flag=False)
    path = tmp / f"{name}.sec"
    path.write_bytes(secret)
    return path, public.decode().strip()


def storekit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "storekit", *args], capture_output=True, text=True)


def test_copy_relocates_from_a_signed_cache_for_another_store_dir(
    built: Built, base: Path, tmp_path: Path
) -> None:
    key, public = nix_key(built.nix, tmp_path, "reloc-cache-1")
    cache = f"file://{tmp_path / 'cache'}?store={built.store_dir}"
    src_spec = f"local?store={built.store_dir}&state={built.nix.state_dir}"
    greeter = built.paths["greeter"]
    pushed = storekit("copy", "--from", src_spec, "--to", cache, "--sign-key", str(key), "-q", greeter)
    assert pushed.returncode == 0, pushed.stderr
    new_dir = dest_dir(built, base, "longer")
    untrusted = storekit("copy", "--from", cache, "--to", new_dir, "--relocate", "-q", greeter)
    assert untrusted.returncode == 1 and "lacks a valid signature" in untrusted.stderr
    assert not any(n for n in os.listdir(new_dir) if n != ".links")
    ok = storekit(
        "copy", "--from", cache, "--to", new_dir, "--relocate", "--trusted-public-keys", public, greeter
    )
    assert ok.returncode == 0, ok.stderr
    dst, dst_nix = open_dest(new_dir)
    with dst:
        [new_greeter] = [p for p in dst.query_all_valid_paths() if p.name == "greeter"]
        assert dst.query_path_info(new_greeter).ca is not None
    with old_store_hidden(built):
        assert run(f"{new_greeter}/bin/greeter") == "hello from libgreet\n"
    nix_verifies(dst_nix)


def test_nix_substitutes_from_cache_serve_relocating_another_store_dir(
    built: Built, base: Path, tmp_path: Path
) -> None:
    key, public = nix_key(built.nix, tmp_path, "reloc-serve-1")
    new_dir = dest_dir(built, base, "shorter")
    src_spec = f"local?store={built.store_dir}&state={built.nix.state_dir}"
    argv = [sys.executable, "-m", "storekit", "cache", "serve", "--store", new_dir, "--port", "0"]
    argv += ["--relocate-from", src_spec, "--sign-key", str(key)]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        assert " at http://127.0.0.1:" in line, server.stderr.read().decode() if server.stderr else line
        url = line.split(" at ")[1].strip()
        wanted = built.paths["greeter"].replace(built.store_dir, new_dir)
        target = NixStore(root=tmp_path / "target", store_dir=new_dir)
        target_uri = f"local?store={new_dir}&state={tmp_path}/target/var&real={tmp_path}/target/store"
        strict = ["--option", "require-sigs", "true", "--option", "trusted-public-keys", public]
        copy = ["nix", "copy", "--store", target_uri, *strict, "--from", f"{url}?store={new_dir}", wanted]
        proc = subprocess.run(copy, capture_output=True, text=True, env=target.env())
        assert proc.returncode == 0, proc.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert run(f"{wanted}/bin/whereami") == f"I live in {wanted}\n"  # relocated into the served store
    verify = ["nix-store", "--store", target_uri, "--verify", "--check-contents"]
    proc = subprocess.run(verify, capture_output=True, text=True, env=target.env())
    assert proc.returncode == 0 and "modified" not in proc.stderr, proc.stderr
    data = Path(tmp_path, "target", "store", os.path.basename(wanted), "bin", "whereami").read_bytes()
    assert data == f'#!/bin/sh\necho "I live in {wanted}"\n'.encode()
