"""The system as one result, for real on a tiny profile: the rootfs tree, export, enter, verify inside.

One module-scoped store holds a seed made from this host's bash and coreutils, one package (a shell
program the profile makes setuid) and the `[rootfs]` tree composed from it and the seed, built by
`bootstrap/lfs/rootfs.sh` and the real builder in bubblewrap. The tarballs are read back with
Python's tarfile and listed by GNU tar; `enter` runs real commands with the tree as `/`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storekit.bootstrap.config import load_profile, parse_profile
from storekit.bootstrap.driver import Bootstrap
from storekit.bootstrap.enter import enter_argv
from storekit.bootstrap.export import export
from storekit.bootstrap.reproduce import check_packages
from storekit.bootstrap.verify import verify
from storekit.cli import app
from storekit.errors import ConfigError, StorekitError
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for

REPO = Path(__file__).resolve().parent.parent.parent
LFS = REPO / "bootstrap" / "lfs"

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

PROFILE = """
[profile]
name = "tiny-system"

[seed]
tools = ["bash", "sh", "cat", "mkdir", "ls", "chmod", "sed", "grep", "rm", "cp", "find", "sort", "tr",
         "ln", "dirname", "id", "touch", "readlink"]
debian_packages = []

[[stages]]
name = "one"
sandbox_paths = ["/bin/sh=@seed@/bin/sh"]

[packages.tool]
stage = "one"
version = "1"

[packages.noisy]
stage = "one"
version = "1"

[rootfs]
packages = ["tool", "seed"]
check = "check.sh"

[rootfs.files]
"etc/passwd" = "root:x:0:0:root:/root:/bin/sh\\n"
"etc/hosts" = "127.0.0.1 localhost\\n"

[rootfs.modes]
"tool:bin/tool" = "4755"
"rootfs:etc/passwd" = "0600 0:0"
"""
TOOL = """mkdir -p "$out/bin"
printf '#!/bin/sh\\necho "tool runs as $(id -u)"\\n' > "$out/bin/tool"
chmod +x "$out/bin/tool"
"""
NOISY = 'mkdir -p "$out/share"; echo same > "$out/share/same"; echo "$EPOCHREALTIME" > "$out/share/stamp"\n'
CHECK = """set -e
[ "$(tool)" = "tool runs as 0" ] && echo "ok: tool"
grep -q "^root:" /etc/passwd
echo "ok: passwd"
"""


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bootstrap]:
    root = tmp_path_factory.mktemp("system")
    (root / "packages").mkdir()
    shutil.copy(LFS / "builder.sh", root / "builder.sh")
    shutil.copy(LFS / "rootfs.sh", root / "rootfs.sh")
    (root / "packages" / "tool.sh").write_text(TOOL)
    (root / "packages" / "noisy.sh").write_text(NOISY)
    (root / "check.sh").write_text(CHECK)
    (root / "tiny.toml").write_text(PROFILE)
    store = LocalStore(local_spec_for(str(root / "store")))
    boot = Bootstrap(load_profile(str(root / "tiny.toml")), store)
    summary = boot.build()
    assert summary.ok and "rootfs" in summary.built, summary.failed
    yield boot
    store.close()


def test_the_tree_links_into_the_store_and_records_what_it_cannot_hold(system: Bootstrap) -> None:
    tree = Path(system.store.real_path(system.plan.rootfs[0].planned.out))
    tool = system.plan.packages["tool"].planned.out
    assert os.readlink(tree / "usr" / "bin" / "tool") == f"{tool}/bin/tool"
    assert os.readlink(tree / "bin") == "usr/bin" and os.readlink(tree / "lib") == "usr/lib"
    assert os.readlink(tree / "usr" / "bin" / "bash").startswith(str(system.plan.seed.out) + "/")
    assert (tree / "etc" / "passwd").read_text() == "root:x:0:0:root:/root:/bin/sh\n"
    manifest = (tree / "nix-support" / "ownership").read_text().splitlines()
    assert f"4755 0 0 {tool}/bin/tool" in manifest and "0600 0 0 etc/passwd" in manifest
    assert "1777 0 0 tmp" in manifest
    # the store path itself stays as every NAR is: no setuid bit
    assert not os.stat(system.store.real_path(tool) + "/bin/tool").st_mode & stat.S_ISUID
    assert {s.id: s.status for _, ss in system.status() for s in ss}["rootfs"] == "built"


def test_export_is_reproducible_with_owners_and_modes_applied(system: Bootstrap, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        first = export(system, str(tmp_path / "a.tar"))
    finally:
        os.umask(old)
    second = export(system, str(tmp_path / "b.tar"))
    assert first.sha256 == second.sha256 == hashlib.sha256((tmp_path / "a.tar").read_bytes()).hexdigest()
    assert stat.S_IMODE((tmp_path / "a.tar").stat().st_mode) == 0o644  # the umask's, not mkstemp's 0600
    assert first.modes_applied == 5  # tool and passwd (the profile), tmp, var/tmp and root (rootfs.sh)
    tool = system.plan.packages["tool"].planned.out
    rootfs = system.plan.rootfs[0].planned.out
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=str.encode)
    by_name = {m.name: m for m in members}
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "root" and m.mtime == 1 for m in members)
    assert by_name[f"{str(tool).lstrip('/')}/bin/tool"].mode == 0o4755
    assert by_name["etc/passwd"].mode == 0o600 and by_name["tmp"].mode == 0o1777
    assert by_name["usr/bin/tool"].issym() and by_name["usr/bin/tool"].linkname == f"{tool}/bin/tool"
    assert not any(n.startswith("nix-support") for n in names)
    assert not any(n.startswith(str(rootfs).lstrip("/")) for n in names)  # the tree is / itself
    assert f"{str(system.plan.seed.out).lstrip('/')}/usr/bin/bash" in names
    # GNU tar reads it, with the setuid bit
    listing = subprocess.run(
        ["tar", "-tvf", str(tmp_path / "a.tar")], capture_output=True, text=True, check=True
    )
    assert any(
        line.startswith("-rwsr-xr-x root/root") and line.endswith("/bin/tool")
        for line in listing.stdout.splitlines()
    )


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.xz", ".tar.zst"])
def test_compressed_exports_are_reproducible(system: Bootstrap, tmp_path: Path, suffix: str) -> None:
    if suffix == ".tar.zst" and shutil.which("zstd") is None:
        pytest.skip("needs zstd")
    a = export(system, str(tmp_path / f"a{suffix}"))
    b = export(system, str(tmp_path / f"b{suffix}"))
    assert a.sha256 == b.sha256
    plain = export(system, str(tmp_path / "p.tar"))
    unpacked = subprocess.run(
        ["tar", "-xOf", str(tmp_path / f"a{suffix}"), "etc/hosts"], capture_output=True, text=True, check=True
    )
    assert unpacked.stdout == "127.0.0.1 localhost\n" and plain.entries == a.entries


def test_enter_runs_commands_with_the_system_as_root(system: Bootstrap) -> None:
    argv = enter_argv(system, ["/bin/sh", "-c", "tool; ls /; cat /etc/hosts; touch /tmp/x && echo writable"])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "tool runs as 0"
    listing = set(out[1:-2])
    assert {"bin", "usr", "etc", "tmp", "lib"} <= listing and "work" not in listing
    assert out[-2:] == ["127.0.0.1 localhost", "writable"]
    # the command's status comes back; the system is read-only outside the tmpfs places
    assert subprocess.run(enter_argv(system, ["/bin/sh", "-c", "exit 3"])).returncode == 3
    ro = subprocess.run(enter_argv(system, ["/bin/sh", "-c", "touch /etc/x"]), capture_output=True)
    assert ro.returncode != 0


def test_the_cli_enters_and_exports(system: Bootstrap, tmp_path: Path) -> None:
    config, store = system.profile.file, system.store.real_dir
    runner = CliRunner()
    result = runner.invoke(
        app, ["bootstrap", "export", config, "--store", store, "-o", str(tmp_path / "s.tar")]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"sha256 {hashlib.sha256((tmp_path / 's.tar').read_bytes()).hexdigest()}"
    bad = runner.invoke(app, ["bootstrap", "export", config, "--store", store, "-o", str(tmp_path / "s.zip")])
    assert bad.exit_code != 0 and "cannot tell the format" in str(bad.exception)
    entered = runner.invoke(
        app, ["bootstrap", "enter", config, "--store", store, "--", "/bin/sh", "-c", "exit 5"]
    )
    assert entered.exit_code == 5


def test_verify_runs_the_check_inside(system: Bootstrap) -> None:
    checks = {c.name: c for c in verify(system)}
    inside = next(c for name, c in checks.items() if "inside the system" in name)
    assert inside.ok, inside.detail
    assert "tool" in inside.detail and "passwd" in inside.detail
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]


def test_an_unbuilt_system_cannot_be_exported_or_entered(system: Bootstrap, tmp_path: Path) -> None:
    other = Bootstrap(system.loaded, LocalStore(local_spec_for(str(tmp_path / "empty"))))
    with pytest.raises(StorekitError, match="not built yet"):
        export(other, str(tmp_path / "x.tar"))
    with pytest.raises(StorekitError, match="not built yet"):
        enter_argv(other, [])
    assert not list(tmp_path.glob("*.tar"))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[rootfs]\npackages = ["nope"]\n', "'nope' is not a declared package"),
        ('[rootfs]\npackages = ["tool"]\ncolour = 1\n', "unknown key"),
        ('[rootfs]\npackages = ["tool"]\n[rootfs.files]\n"/etc/passwd" = "x"\n', "relative path"),
        ('[rootfs]\npackages = ["tool"]\n[rootfs.modes]\n"tool:bin/tool" = "u+s"\n', "octal mode"),
        ('[rootfs]\npackages = ["tool"]\n[rootfs.modes]\n"other:bin/x" = "4755"\n', "PACKAGE:PATH"),
        ('[[rootfs]]\npackages = ["tool"]\n', "needs a name"),
        ('[[rootfs]]\nname = "tool"\npackages = ["tool"]\n', "already a package or stage name"),
        ('[[rootfs]]\nname = "one"\npackages = ["tool"]\n', "already a package or stage name"),
        ('[[rootfs]]\nname = "a"\npackages = ["tool"]\n' * 2, "names two"),
        ('[[rootfs]]\nname = "a"\npackages = ["tool"]\nfiles_from = "b"\n', "'b' is not a .* before"),
    ],
)
def test_a_bad_rootfs_table_is_a_clear_error(table: str, message: str) -> None:
    head = PROFILE.split("[rootfs]")[0]
    with pytest.raises(ConfigError, match=message):
        parse_profile(head + table, "t.toml")


def test_check_rebuilds_and_names_the_files_that_differ(system: Bootstrap) -> None:
    found = {c.id: c.result for c in check_packages(system)}
    assert set(found) == {"tool", "noisy", "rootfs"}
    assert found["tool"] is not None and found["tool"].same
    assert found["rootfs"] is not None and found["rootfs"].same  # the tree is reproducible too
    noisy = found["noisy"]
    assert noisy is not None and not noisy.same and noisy.differing == ("share/stamp",)
    # the store is unchanged: the registered hash is still the first build's
    info = system.store.lookup_path_info(noisy.output)
    assert info is not None and info.nar_hash == noisy.expected
    runner = CliRunner()
    config, store = system.profile.file, system.store.real_dir
    one = runner.invoke(app, ["bootstrap", "check", config, "tool", "--store", store])
    assert one.exit_code == 0 and one.stdout.startswith("same     tool"), one.output
    drv = str(system.plan.packages["noisy"].planned.drv_path)
    nix_like = runner.invoke(
        app,
        [
            "build",
            "--check",
            drv,
            "--store",
            store,
            "--sandbox-path",
            f"/bin/sh={system.plan.seed.out}/bin/sh",
        ],
    )
    assert nix_like.exit_code != 0 and "may not be deterministic" in str(nix_like.exception)


def test_the_system_of_an_earlier_stage_is_built_entered_and_verified_while_later_ones_are_not(
    tmp_path: Path,
) -> None:
    """The LFS case: chapter 7's system is the rootfs while chapter 8 builds (or fails) after it.

    The tree is built as soon as its stage is, `--until rootfs` builds just what it composes, and
    `verify --until STAGE` checks the system so far, where a plain `verify` names what is missing.
    """
    (tmp_path / "packages").mkdir()
    shutil.copy(LFS / "builder.sh", tmp_path / "builder.sh")
    shutil.copy(LFS / "rootfs.sh", tmp_path / "rootfs.sh")
    (tmp_path / "packages" / "tool.sh").write_text(TOOL)
    (tmp_path / "packages" / "noisy.sh").write_text(NOISY)
    (tmp_path / "packages" / "later.sh").write_text("echo 'chapter 8 is not there yet' >&2; exit 1\n")
    (tmp_path / "check.sh").write_text(CHECK)
    text = PROFILE.replace("[rootfs]\n", '[rootfs]\nstage = "one"\n')
    text += '\n[[stages]]\nname = "two"\n\n[packages.later]\nstage = "two"\nversion = "1"\n'
    (tmp_path / "p.toml").write_text(text)
    store = LocalStore(local_spec_for(str(tmp_path / "store")))
    try:
        boot = Bootstrap(load_profile(str(tmp_path / "p.toml")), store)
        only = boot.build(until=["rootfs"])  # what the tree composes, not the rest of its stage
        assert only.ok and set(only.built) == {"tool", "rootfs"}, only
        summary = boot.build()  # stage two fails: the system of stage one is already there
        assert set(summary.failed) == {"later"} and "rootfs" in summary.valid, summary
        assert store.is_valid_path(boot.plan.rootfs[0].planned.out)
        so_far = {c.name: c for c in verify(boot, until="one")}
        assert all(c.ok for c in so_far.values()), [c for c in so_far.values() if not c.ok]
        assert any("inside the system" in name for name in so_far)
        by_tree = {c.name: c.ok for c in verify(boot, until="rootfs")}  # a tree: what it composes
        assert by_tree == {name: c.ok for name, c in so_far.items()}
        whole = verify(boot)
        assert not whole[0].ok and "later" in whole[0].detail
        assert "rootfs" not in whole[0].detail
    finally:
        store.close()


TWO_TREES = """
[[rootfs]]
name = "chroot"
stage = "one"
packages = ["tool", "seed"]
check = "check.sh"

[rootfs.files]
"etc/hosts" = "127.0.0.1 chroot\\n"
"etc/passwd" = "root:x:0:0:root:/root:/bin/sh\\n"

[[rootfs]]
name = "system"
packages = ["final", "seed"]
check = "check-final.sh"
files_from = "chroot"

[rootfs.files]
"etc/hosts" = "127.0.0.1 system\\n"

[rootfs.modes]
"final:bin/final" = "4711"
"""


def test_a_profile_composes_several_systems_each_entered_exported_and_checked(tmp_path: Path) -> None:
    """The LFS profile's case: the book's chroot after chapter 7 and the finished system after 8.

    Each tree is built after its own stage (`--until NAME` builds one), `enter`/`export` take the
    last declared unless given `--rootfs NAME`, and `verify` runs each tree's check inside it.
    """
    (tmp_path / "packages").mkdir()
    shutil.copy(LFS / "builder.sh", tmp_path / "builder.sh")
    shutil.copy(LFS / "rootfs.sh", tmp_path / "rootfs.sh")
    (tmp_path / "packages" / "tool.sh").write_text(TOOL)
    (tmp_path / "packages" / "noisy.sh").write_text(NOISY)
    (tmp_path / "packages" / "final.sh").write_text(TOOL.replace("tool", "final"))
    (tmp_path / "check.sh").write_text(CHECK)
    (tmp_path / "check-final.sh").write_text('[ "$(final)" = "final runs as 0" ] && echo "ok: final"\n')
    head = PROFILE.split("[rootfs]")[0]
    two = '[[stages]]\nname = "two"\ninputs = ["seed"]\nsandbox_paths = ["/bin/sh=@seed@/bin/sh"]\n'
    text = head + two + '\n[packages.final]\nstage = "two"\nversion = "1"\n' + TWO_TREES
    (tmp_path / "p.toml").write_text(text)
    store = LocalStore(local_spec_for(str(tmp_path / "store")))
    try:
        boot = Bootstrap(load_profile(str(tmp_path / "p.toml")), store)
        assert [t.package.id for t in boot.plan.rootfs] == ["chroot", "system"]
        assert [t.planned.out.name for t in boot.plan.rootfs] == [
            "chroot-tiny-system",
            "system-tiny-system",
        ]
        for tree in boot.plan.rootfs:  # built with the seed's tools alone, whatever the stage has
            assert tree.planned.drv.env["inputs"] == str(boot.plan.seed.out)
            assert tree.planned.drv.env["sandboxPaths"] == ""
        with pytest.raises(StorekitError, match=r"not built yet.*--until system"):
            enter_argv(boot, [])
        only = boot.build(until=["chroot"])
        assert only.ok and set(only.built) == {"tool", "chroot"}, only
        assert "final" not in only.built and not store.is_valid_path(boot.plan.rootfs[1].planned.out)
        whole = boot.build()
        assert whole.ok and set(whole.built) == {"noisy", "final", "system"}, whole
        assert "chroot" in whole.valid

        def inside(*args: str) -> str:
            argv = enter_argv(boot, ["/bin/sh", "-c", "cat /etc/hosts; ls /usr/bin"], None, *args)
            return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

        default, chroot = inside(), inside("chroot")
        assert default.startswith("127.0.0.1 system\n") and "final" in default.split()
        assert chroot.startswith("127.0.0.1 chroot\n") and "final" not in chroot.split()
        etc = Path(store.real_path(boot.plan.rootfs[1].planned.out)) / "etc"
        assert (etc / "passwd").read_text() == "root:x:0:0:root:/root:/bin/sh\n"  # files_from
        assert (etc / "hosts").read_text() == "127.0.0.1 system\n"  # its own replaces the chroot's
        with pytest.raises(StorekitError, match="no rootfs tree 'nope' \\(it has: chroot, system\\)"):
            enter_argv(boot, [], None, "nope")

        sys_tar, chroot_tar = tmp_path / "system.tar", tmp_path / "chroot.tar"
        assert export(boot, str(sys_tar)).modes_applied == 4  # final's setuid, tmp, var/tmp, root
        export(boot, str(chroot_tar), "chroot")
        with tarfile.open(sys_tar) as a, tarfile.open(chroot_tar) as b:
            assert "usr/bin/final" in a.getnames() and "usr/bin/final" not in b.getnames()
            assert "usr/bin/tool" in b.getnames() and "usr/bin/tool" not in a.getnames()

        checks = {c.name: c for c in verify(boot)}
        inside_checks = [c for name, c in checks.items() if "inside the system" in name]
        assert len(inside_checks) == 2 and all(c.ok for c in inside_checks), inside_checks
        assert any("'chroot'" in name and "check.sh" in name for name in checks)
        assert any("'system'" in name and "check-final.sh" in name for name in checks)
        states = [(stage, [s.id for s in ss]) for stage, ss in boot.status()]
        assert states[-2:] == [("chroot", ["chroot"]), ("system", ["system"])]

        result = CliRunner().invoke(
            app,
            ["bootstrap", "enter", str(tmp_path / "p.toml"), "--store", store.real_dir, "--rootfs",
             "chroot", "--", "/bin/sh", "-c", "tool"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    finally:
        store.close()
