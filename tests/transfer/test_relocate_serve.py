"""`storekit cache serve --relocate-from … --relocate-mode content-addressed`, checked by real Nix 2.8.

A closure built by real Nix in an old store dir (`dep`, `top` and `other` naming it, `blob` holding
its own path in binary data) is served relocated content-addressed into a longer store dir: `top` at
start-up (`--relocate`, which prints `old -> new`), `other` and `blob` through `GET /relocate/…`.
Real Nix substitutes the new paths with `require-sigs` and no trusted key (they are trusted for their
names) and `nix store verify` accepts them; `storekit copy --from http://…` does too. `blob` cannot
grow inside binary data: it is refused (500, the reason in the body and the server's log) and nothing
of it is added. A keep-hash server (the default) answers the endpoint with the old hash part.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from nixoracle import NixStore, make_nix_store

import storekit.transfer.relocating as substitute
from storekit.errors import StorekitError
from storekit.narinfo import NarInfo
from storekit.relocate import Mode
from storekit.store.local import LocalStore
from storekit.store.open import open_store
from storekit.store.specs import local_spec_for
from storekit.storepath import StoreDir
from storekit.transfer.relocating import RelocatingStore
from storekit.transfer.relocation_index import RelocationIndex
from storekit.transfer.serve import CacheServer

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
  dep = build "dep" ''
    mkdir -p $out/share
    printf 'data of %s\n' "$out" > $out/share/data.txt
  '';
in {
  inherit dep;
  top = build "top" ''
    mkdir -p $out/bin
    printf '#!/bin/sh\ncat %s/share/data.txt\necho "I am %s"\n' "${dep}" "$out" > $out/bin/top
    chmod +x $out/bin/top
  '';
  other = build "other" ''
    mkdir -p $out
    printf 'see %s/share\n' "${dep}" > $out/readme
  '';
  blob = build "blob" ''
    mkdir -p $out
    printf 'BLOB\0\001%s\0tail' "$out" > $out/blob.bin
  '';
}
"""


@dataclass
class Served:
    old: NixStore
    paths: dict[str, str]
    new_dir: str
    url: str
    started: list[str]
    state_dir: Path
    log: list[str] = field(default_factory=list)

    def backing(self) -> LocalStore:
        return LocalStore(local_spec_for(self.new_dir))


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def nix_key(nix: NixStore, tmp: Path) -> Path:
    secret = nix.run("nix", "key", "generate-secret", "--key-name", "reloc-ca-serve-1", store_flag=False)
    path = tmp / "key.sec"
    path.write_bytes(secret)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("reloc-serve")
    old = make_nix_store(root / "src")
    (root / "closure.nix").write_text(CLOSURE_NIX)
    build = ("nix-build", str(root / "closure.nix"), "--no-out-link", "-A")
    paths = {name: old.text(*build, name) for name in ("dep", "top", "other", "blob")}
    new_dir = str(tmp_path_factory.mktemp("n") / "a-rather-longer-store-dir-for-serving" / "store")
    assert len(new_dir) > len(old.store_dir)
    state_dir = root / "state"
    argv = [sys.executable, "-m", "storekit", "cache", "serve", "--store", new_dir, "--port", "0"]
    argv += ["--relocate-from", old.uri, "--relocate-mode", "content-addressed"]
    argv += ["--relocate", paths["top"], "--sign-key", str(nix_key(old, root)), "--state-dir", str(state_dir)]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    assert server.stderr is not None and server.stdout is not None
    reader = threading.Thread(target=lambda: log.extend(server.stderr or []), daemon=True)
    reader.start()
    try:
        started = []
        while " at http://127.0.0.1:" not in (line := server.stdout.readline()):
            assert line, f"the server stopped: {server.wait()} {''.join(log)}"
            started.append(line.rstrip("\n"))
        url = line.split(" at ")[1].strip()
        yield Served(old, paths, new_dir, url, started, state_dir, log)
    finally:
        server.terminate()
        server.wait(timeout=10)


def nix_copy(served: Served, target: Path, *paths: str) -> tuple[NixStore, str]:
    """`nix copy` from the server into a new store for the new store dir: sigs required, none trusted."""
    nix = NixStore(root=target, store_dir=served.new_dir)
    uri = f"local?store={served.new_dir}&state={target}/var/nix&real={target}/store"
    strict = ["--option", "require-sigs", "true", "--option", "trusted-public-keys", ""]
    argv = ["nix", "copy", "--store", uri, *strict, "--from", served.url, *paths]
    proc = subprocess.run(argv, capture_output=True, text=True, env=nix.env())
    assert proc.returncode == 0, proc.stderr
    return nix, uri


def new_of(served: Served, line: str) -> str:
    _, arrow, new = line.partition(" -> ")
    assert arrow and new.startswith(served.new_dir + "/")
    return new


def test_start_up_relocation_prints_names_nix_substitutes_and_verifies(
    served: Served, tmp_path: Path
) -> None:
    [line] = served.started
    assert line.startswith(f"{served.paths['top']} -> ")
    top = new_of(served, line)
    old_hash = Path(served.paths["top"]).name[:32]
    assert Path(top).name.endswith("-top") and not Path(top).name.startswith(old_hash)  # a new name
    nix, uri = nix_copy(served, tmp_path / "target", top)
    infos = json.loads(
        subprocess.check_output(["nix", "path-info", "--store", uri, "--json", "-r", top], env=nix.env())
    )
    assert {Path(i["path"]).name.split("-", 1)[1] for i in infos} == {"top", "dep"}
    assert all(i["ca"].startswith("fixed:r:sha256:") for i in infos)
    verify = ["nix", "store", "verify", "--store", uri, "--option", "trusted-public-keys", "", "--all"]
    proc = subprocess.run(verify, capture_output=True, text=True, env=nix.env())
    assert proc.returncode == 0, proc.stderr
    check = ["nix-store", "--store", uri, "--verify", "--check-contents"]
    proc = subprocess.run(check, capture_output=True, text=True, env=nix.env())
    assert proc.returncode == 0 and "modified" not in proc.stderr, proc.stderr
    [dep] = [i["path"] for i in infos if i["path"].endswith("-dep")]
    script = (tmp_path / "target" / "store" / Path(top).name / "bin" / "top").read_text()
    assert script == f'#!/bin/sh\ncat {dep}/share/data.txt\necho "I am {top}"\n'
    ran = subprocess.run(
        [f"{top}/bin/top"], capture_output=True, text=True
    )  # from the server's backing store
    assert ran.stdout == f"data of {dep}\nI am {top}\n"
    index = json.loads(next(served.state_dir.glob("*.json")).read_text())
    assert index[served.paths["top"]] == top and index[served.paths["dep"]] == dep


def test_relocate_endpoint_answers_the_new_name_and_storekit_copies_it(
    served: Served, tmp_path: Path
) -> None:
    other_hash = Path(served.paths["other"]).name[:32]
    status, body = get(f"{served.url}/relocate/{other_hash}")
    assert status == 200, body
    other = body.strip()
    assert other.startswith(served.new_dir + "/") and other.endswith("-other")
    assert get(f"{served.url}/relocate/{other_hash}") == (200, body)  # the index answers again
    status, text = get(f"{served.url}/{Path(other).name[:32]}.narinfo")
    assert status == 200, text
    narinfo = NarInfo.parse(text, StoreDir(served.new_dir))
    assert narinfo.ca is not None and narinfo.ca.startswith("fixed:r:sha256:")
    assert [s.split(":")[0] for s in narinfo.sigs] == ["reloc-ca-serve-1"]  # signed anyway
    # the old name is not served: a content-addressed server knows only the new ones
    assert get(f"{served.url}/{other_hash}.narinfo")[0] == 404
    dep_hash = Path(served.paths["dep"]).name[:32]
    dep = get(f"{served.url}/relocate/{dep_hash}")[1].strip()
    assert [Path(r).name for r in narinfo.references] == [Path(dep).name]  # the same dep as top's
    copy = tmp_path / "copy"
    dest = f"local?store={served.new_dir}&state={copy}/var/nix&real={copy}/store"
    copied = subprocess.run(
        [
            sys.executable,
            "-m",
            "storekit",
            "copy",
            "--from",
            f"{served.url}?store={served.new_dir}",
            "--to",
            dest,
            "-q",
            other,
        ],
        capture_output=True,
        text=True,
    )
    assert copied.returncode == 0, copied.stderr  # no key trusted: content-addressed paths need none
    with open_store(dest) as store, served.backing() as backing:
        new = store.parse_path(other)
        assert store.query_path_info(new).ca == narinfo.ca
        assert b"".join(store.nar_from_path(new)) == b"".join(backing.nar_from_path(new))
    readme = copy / "store" / Path(other).name / "readme"
    assert Path(other, "readme").read_text() == f"see {dep}/share\n" == readme.read_text()
    nix_copy(served, tmp_path / "target", other)


def test_refused_path_is_a_500_with_the_reason_and_adds_nothing(served: Served) -> None:
    blob_hash = Path(served.paths["blob"]).name[:32]
    status, body = get(f"{served.url}/relocate/{blob_hash}")
    assert status == 500 and body.startswith("refusing to relocate") and "blob.bin at offset" in body
    with served.backing() as backing:
        assert not any(p.name == "blob" for p in backing.query_all_valid_paths())
    assert not any(p.name.endswith("-blob") for p in Path(served.new_dir).iterdir())
    for _ in range(50):  # the log is read on another thread
        if "blob.bin at offset" in "".join(served.log):
            break
        time.sleep(0.1)
    logged = "".join(served.log)
    assert f"GET /relocate/{blob_hash}: refusing to relocate" in logged and "blob.bin at offset" in logged
    assert get(f"{served.url}/relocate/{'0' * 32}")[0] == 404  # the upstream has no such path


def test_index_remembers_names_across_restarts(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = RelocationIndex(tmp_path / "index.json")
    with (
        served.backing() as backing,
        LocalStore(local_spec_for(served.old.store_dir, state_dir=str(served.old.state_dir))) as old,
    ):
        top_old = old.parse_path(served.paths["top"])
        store = RelocatingStore(backing, old, mode=Mode.CONTENT_ADDRESSED, index=index)
        first = store.relocate_paths([top_old])
        assert str(first[top_old]) == new_of(served, served.started[0])  # the same name as the server's

        def no_relocation(*args: object, **kw: object) -> None:
            raise AssertionError("relocated again")

        monkeypatch.setattr(substitute, "relocate", no_relocation)
        again = RelocatingStore(backing, old, mode=Mode.CONTENT_ADDRESSED, index=RelocationIndex(index.file))
        assert again.relocate_paths([top_old]) == first
        assert again.relocate_hash_part(top_old.hash_part) == first[top_old]
        with pytest.raises(AssertionError, match="relocated again"):
            again.relocate_paths([old.parse_path(served.paths["blob"])])


def test_broken_index_is_reported_for_users(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("[1, 2")
    with pytest.raises(StorekitError, match="delete it"):
        RelocationIndex(tmp_path / "index.json")


def test_keep_hash_server_answers_the_endpoint_too(served: Served, tmp_path: Path) -> None:
    """Keep-hash stays the default: the endpoint gives the same hash part under the new store dir."""
    new_dir = str(tmp_path / "kh" / "a-rather-longer-store-dir-for-keep-hash" / "store")
    spec = local_spec_for(served.old.store_dir, state_dir=str(served.old.state_dir))
    store = RelocatingStore(LocalStore(local_spec_for(new_dir)), LocalStore(spec))
    server = CacheServer(store, port=0, relocator=store.relocate_hash_part)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        top_hash = Path(served.paths["top"]).name[:32]
        expected = f"{new_dir}/{Path(served.paths['top']).name}"
        assert get(f"{server.url}/relocate/{top_hash}") == (200, f"{expected}\n")
        status, text = get(f"{server.url}/{top_hash}.narinfo")
        assert status == 200 and NarInfo.parse(text, StoreDir(new_dir)).ca is None
        assert get(f"{server.url}/relocate/{Path(served.paths['blob']).name[:32]}")[0] == 500
    finally:
        server.shutdown()
        server.server_close()
        store.close()


def test_relocate_without_an_upstream_is_a_usage_error(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "storekit", "cache", "serve", "--store", str(tmp_path / "s"), "--port", "0"]
    proc = subprocess.run([*argv, "--relocate", "/nix/store/x"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error: --relocate needs --relocate-from")
