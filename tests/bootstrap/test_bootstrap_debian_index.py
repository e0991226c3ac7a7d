"""Sources that move: Debian's source index read through apt, moved pins found and rewritten in place.

The index text is what `apt-cache showsrc` prints (two versions of a package, as bookworm and its
security suite list them); version order is checked against dpkg itself; the pin rewrite works on a
real profile text and must keep its comments and layout.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from storekit.bootstrap.config import parse_profile, read_document
from storekit.bootstrap.debian import AptConfig, fetch_from_debian
from storekit.bootstrap.debian_index import (
    apply_moves,
    compare_versions,
    find_move,
    parse_showsrc,
    role,
    upstream_of,
    versions_with,
)
from storekit.errors import StorekitError

ORIG = b"the 5.36.0 orig\n"
ORIG_SHA = hashlib.sha256(ORIG).hexdigest()
NEW_LINUX = "22c0dd635fead7dcba91baf1893e6569634df86ffe6b7b96a201624cc0e88efe"


def showsrc_text() -> str:
    return f"""Package: perl
Binary: perl
Version: 5.36.0-7+deb12u3
Files:
 0123 10 perl_5.36.0-7+deb12u3.dsc
Checksums-Sha256:
 {"a" * 64} 3000 perl_5.36.0-7+deb12u3.dsc
 {ORIG_SHA} 16 perl_5.36.0.orig.tar.xz
 {"b" * 64} 900 perl_5.36.0-7+deb12u3.debian.tar.xz

Package: perl
Version: 5.36.0-7+deb12u4
Checksums-Sha256:
 {ORIG_SHA} 16 perl_5.36.0.orig.tar.xz
 {"c" * 64} 901 perl_5.36.0-7+deb12u4.debian.tar.xz

Package: linux
Version: 6.1.192-3
Checksums-Sha256:
 {NEW_LINUX} 137 linux_6.1.192.orig.tar.xz
 {"d" * 64} 1841 linux_6.1.192-3.debian.tar.xz
"""


PROFILE = f"""# a profile with comments
[profile]
name = "t"

[mirrors]
debian = ["https://deb.debian.org/debian/pool/main"]

[[stages]]
name = "s"

[packages.linux-headers]
stage = "s"
version = "6.1.187"  # the kernel

# Debian's orig
[[packages.linux-headers.sources]]
url = "mirror://debian/l/linux/linux_6.1.187.orig.tar.xz"
debian = "linux=6.1.187-1"
sha256 = "{"e" * 64}"

[packages.perl]
stage = "s"
version = "5.36.0"
patches = ["perl_5.36.0-7+deb12u9.debian.tar.xz:debian/patches/x.diff"]

[[packages.perl.sources]]
url = "mirror://debian/p/perl/perl_5.36.0.orig.tar.xz"
debian = "perl=5.36.0-7+deb12u9"
sha256 = "{ORIG_SHA}"

[[packages.perl.sources]]
url = "mirror://debian/p/perl/perl_5.36.0-7+deb12u9.debian.tar.xz"
debian = "perl=5.36.0-7+deb12u9"
sha256 = "{"f" * 64}"
"""


def test_the_index_is_parsed_per_version() -> None:
    records = parse_showsrc(showsrc_text())
    assert [(r.package, r.version) for r in records] == [
        ("perl", "5.36.0-7+deb12u3"), ("perl", "5.36.0-7+deb12u4"), ("linux", "6.1.192-3"),
    ]  # fmt: skip
    assert records[0].files["perl_5.36.0.orig.tar.xz"] == ORIG_SHA
    assert role("gcc-12_12.2.0-14+deb12u1.debian.tar.xz") == "debian"
    assert role("linux_6.1.187.orig.tar.xz") == role("linux_6.1.192.orig.tar.xz") == "orig"
    assert role("perl_5.36.0.orig-regen-configure.tar.xz") == "orig-regen-configure"
    assert upstream_of("2:6.2.1+dfsg1-1.1") == "6.2.1+dfsg1" and upstream_of("1.34+dfsg") == "1.34+dfsg"


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is the oracle")
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("5.36.0-7+deb12u3", "5.36.0-7+deb12u4"),
        ("6.1.187-1", "6.1.192-3"),
        ("6.1.99-1", "6.1.187-1"),
        ("1:3.8-4", "3.9-1"),
        ("1.0~rc1-1", "1.0-1"),
        ("2.36-9+deb12u14", "2.36-9+deb12u9"),
        ("1.0", "1.0-0"),
        ("1.0a-1", "1.0-1"),
        ("2:6.2.1+dfsg1-1.1", "2:6.2.1+dfsg1-1"),
    ],
)
def test_version_order_is_dpkgs(a: str, b: str) -> None:
    def dpkg(op: str) -> bool:
        return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0

    expected = -1 if dpkg("lt") else (1 if dpkg("gt") else 0)
    assert compare_versions(a, b) == expected
    assert compare_versions(b, a) == -expected


def test_a_gone_version_is_found_where_it_moved() -> None:
    records = parse_showsrc(showsrc_text())
    profile = parse_profile(PROFILE, "t.toml")
    linux = profile.packages["linux-headers"].sources[0]
    move = find_move(linux, records)
    assert move is not None
    assert (move.new_version, move.new_file, move.sha256) == (
        "6.1.192-3",
        "linux_6.1.192.orig.tar.xz",
        NEW_LINUX,
    )
    assert (
        move.describe()
        == "linux moved 6.1.187-1 -> 6.1.192-3 (linux_6.1.187.orig.tar.xz -> linux_6.1.192.orig.tar.xz)"
    )
    orig = profile.packages["perl"].sources[0]
    assert versions_with(orig, records) == ["5.36.0-7+deb12u4", "5.36.0-7+deb12u3"]  # newest first
    listed = parse_profile(PROFILE.replace("deb12u9", "deb12u3"), "t.toml").packages["perl"].sources[0]
    assert find_move(listed, records) is None  # still there: nothing moved


def test_pins_are_rewritten_in_place_keeping_comments(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(PROFILE)
    profile = parse_profile(PROFILE, str(path))
    records = parse_showsrc(showsrc_text())
    moves = [m for p in profile.packages.values() for s in p.sources if (m := find_move(s, records))]
    document = read_document(str(path))
    changed = apply_moves(document, profile, moves)
    text = document.as_string()
    assert sorted(changed) == [
        "packages.linux-headers.sources[0]", "packages.perl.sources[0]", "packages.perl.sources[1]",
    ]  # fmt: skip
    again = parse_profile(text, "t.toml")
    linux = again.packages["linux-headers"]
    assert linux.version == "6.1.192" and linux.sources[0].sha256 == NEW_LINUX
    assert linux.sources[0].urls[0].endswith("/linux_6.1.192.orig.tar.xz")
    assert linux.sources[0].debian == "linux=6.1.192-3"
    perl = again.packages["perl"]
    assert perl.sources[0].urls[0].endswith("/perl_5.36.0.orig.tar.xz") and perl.sources[0].sha256 == ORIG_SHA
    assert (
        perl.sources[1].file == "perl_5.36.0-7+deb12u4.debian.tar.xz" and perl.sources[1].sha256 == "c" * 64
    )
    assert perl.patches == ("perl_5.36.0-7+deb12u4.debian.tar.xz:debian/patches/x.diff",)
    # everything else is byte for byte what it was
    assert (
        "# a profile with comments" in text
        and "# Debian's orig" in text
        and '"6.1.192"  # the kernel' in text
    )
    assert text.count("\n") == PROFILE.count("\n")


def test_sources_take_the_same_file_from_another_version_or_say_where_it_went(tmp_path: Path) -> None:
    calls: list[str] = []

    def run(argv: Sequence[str], cwd: str) -> None:
        spec = argv[-1]
        calls.append(spec)
        if spec == "perl=5.36.0-7+deb12u3":
            (Path(cwd) / "perl_5.36.0.orig.tar.xz").write_bytes(ORIG)
            return
        if "source" in argv:
            raise StorekitError(f"E: Failed to fetch {spec}: 404  Not Found")

    profile = parse_profile(PROFILE, "t.toml")
    sources = [profile.packages["perl"].sources[0], profile.packages["linux-headers"].sources[0]]
    apt_dir = tmp_path / "apt"
    (apt_dir / "lists").mkdir(parents=True)
    (apt_dir / "lists" / "x_Sources").write_text("")
    results = fetch_from_debian(
        sources, str(tmp_path / "m"), apt_dir=str(apt_dir), run=run, showsrc=lambda name: showsrc_text()
    )
    perl, linux = results
    assert perl.status == "fetched" and "perl=5.36.0-7+deb12u9 is gone" in perl.detail, perl.detail
    assert (tmp_path / "m" / "perl_5.36.0.orig.tar.xz").read_bytes() == ORIG
    assert calls[:3] == ["perl=5.36.0-7+deb12u9", "perl=5.36.0-7+deb12u4", "perl=5.36.0-7+deb12u3"]
    assert linux.status == "failed"
    assert "linux moved 6.1.187-1 -> 6.1.192-3" in linux.detail and NEW_LINUX in linux.detail
    assert "storekit bootstrap pin CONFIG --from-debian" in linux.detail
    assert AptConfig().options == ()
