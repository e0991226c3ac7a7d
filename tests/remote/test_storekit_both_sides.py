"""storekit on both ends: `storekit copy ssh://` and `storekit build --builders` talking to
`storekit nix-store --serve --write` on the far side (the test sshd), one store dir on both sides."""

from __future__ import annotations

import sys
import urllib.parse
import uuid
from pathlib import Path

import pytest
from build_fixtures import instantiate, write_recipe
from remote_fixtures import spec_of, storekit, storekit_store
from sshd_server import Sshd

from storekit.store.local import LocalStore

pytestmark = pytest.mark.interop


def far_uri(sshd: Sshd, far: LocalStore) -> str:
    """The far storekit as an `ssh://` store: its program is a wrapper giving it PATH (bwrap)."""
    storekit_program = str(Path(sys.executable).parent / "storekit")
    program = sshd.wrapper(
        f"sk-{uuid.uuid4().hex[:8]}", storekit_program, {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    )
    params = {"remote-program": f"{program} nix-store", "remote-store": spec_of(far)}
    return f"ssh://{sshd.host}?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"


def test_copies_both_ways(sshd: Sshd, tmp_path: Path) -> None:
    store_dir = str(tmp_path / "shared" / "store")
    here, far = storekit_store(tmp_path / "here", store_dir), storekit_store(tmp_path / "far", store_dir)
    dep = here.add_text("dep", b"a dependency\n")
    top = here.add_text("top", f"{dep}\n".encode(), [dep])
    uri = far_uri(sshd, far)
    storekit(sshd, "copy", "--from", spec_of(here), "--to", uri, str(top))
    assert {str(p) for p in far.closure([top])} == {str(top), str(dep)}
    back = storekit_store(tmp_path / "back", store_dir)
    storekit(sshd, "copy", "--from", uri, "--to", spec_of(back), str(top))
    for path in (top, dep):
        mine, theirs = here.query_path_info(path), back.query_path_info(path)
        assert (theirs.nar_hash, theirs.references) == (mine.nar_hash, mine.references)


def test_a_build_on_a_storekit_builder_equals_a_local_build(sshd: Sshd, tmp_path: Path) -> None:
    store_dir = str(tmp_path / "shared" / "store")
    here, far = storekit_store(tmp_path / "here", store_dir), storekit_store(tmp_path / "far", store_dir)
    write_recipe(tmp_path, "one", "echo one > $out")
    recipe = write_recipe(
        tmp_path, "two", "mkdir $out; cat ${inputs.d} > $out/copy", inputs={"d": "one.toml"}
    )
    drv = str(instantiate(here, recipe))
    builders = f"{far_uri(sshd, far)} x86_64-linux - 2"
    storekit(sshd, "build", drv, "--store", spec_of(here), "--builders", builders, "--max-jobs", "0",
             "--no-out-link")  # fmt: skip
    built = {
        str(p): here.query_path_info(p).nar_hash
        for p in here.query_all_valid_paths()
        if p.name in ("one", "two")
    }
    assert len(built) == 2
    for path in built:
        assert far.is_valid_path(far.parse_path(path))  # built there
    local = storekit_store(tmp_path / "local", store_dir)
    assert str(instantiate(local, recipe)) == drv
    storekit(sshd, "build", drv, "--store", spec_of(local), "--no-out-link")
    assert {
        str(p): local.query_path_info(p).nar_hash
        for p in local.query_all_valid_paths()
        if p.name in ("one", "two")
    } == built
