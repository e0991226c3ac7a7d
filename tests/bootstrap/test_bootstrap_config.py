"""Bootstrap profiles: the shipped ones parse, and every schema error names the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomlkit

from storekit.bootstrap.config import load_profile, parse_profile, pin_sources, read_document
from storekit.bootstrap.plan import make_plan
from storekit.errors import ConfigError
from storekit.storepath import StoreDir

REPO = Path(__file__).resolve().parent.parent.parent
# seed.toml is not a profile: the LFS profiles take their seed from it (`[seed] from = "seed.toml"`)
PROFILES = sorted(p for p in (REPO / "bootstrap" / "lfs").glob("*.toml") if p.name != "seed.toml")

MINIMAL = """
[profile]
name = "t"

[[stages]]
name = "one"

[[stages]]
name = "two"

[packages.a]
stage = "one"
version = "1"
sources = [{ url = "https://example.org/a-1.tar.gz", sha256 = "%s" }]

[packages.b]
stage = "one"
version = "2"
deps = ["a"]

[packages.c]
stage = "two"
version = "3"
""" % ("ab" * 32)


def test_the_shipped_profiles_load_with_their_scripts() -> None:
    assert {p.name for p in PROFILES} >= {"mini.toml", "lfs.toml", "lfs-debian.toml"}
    for path in PROFILES:
        loaded = load_profile(str(path))
        assert loaded.profile.packages, path
        for pkg in loaded.profile.packages.values():
            assert loaded.files[pkg.script], f"{path}: {pkg.id} has an empty script"


def test_the_debian_profile_is_the_books_stages_with_debians_sources() -> None:
    """lfs-debian.toml reuses lfs.toml's scripts and stages; only its sources differ, all pinned.

    Debian's make orig has no configure: the Debian profile adds autoconf and automake to chapter 6
    (not book pages) and make depends on them. Chapter 8 is built from Debian's sources first (its
    scripts follow Debian 12's versions, not the book's newer ones): lfs.toml's stages are the
    Debian profile's first ones. Three chapter 8 sources are not Debian 12's files, each said in its
    table: flit_core's sdist (Debian's flit orig is the whole repository), netbase 6.5's tarball and
    Ubuntu's sysvinit 3.08 orig (Debian 12's files are not on the archive this machine reaches).
    """
    book = load_profile(str(REPO / "bootstrap" / "lfs" / "lfs.toml")).profile
    debian = load_profile(str(REPO / "bootstrap" / "lfs" / "lfs-debian.toml")).profile
    assert [s.name for s in debian.stages][: len(book.stages)] == [s.name for s in book.stages]
    extra = {"autoconf-tmp", "automake-tmp"}
    elsewhere = {
        "flit-core": "https://files.pythonhosted.org/",
        "iana-etc": "https://deb.debian.org/debian/pool/main/",
        "sysvinit": "https://archive.ubuntu.com/ubuntu/pool/main/",
    }
    for pkg in debian.packages.values():
        for source in pkg.sources:
            assert source.sha256, source.key
            if pkg.id in elsewhere:
                assert source.debian is None and source.urls[0].startswith(elsewhere[pkg.id]), source.key
                continue
            assert source.debian, source.key
            assert source.urls[0].startswith("https://deb.debian.org/debian/pool/main/"), source.key
        if pkg.id in extra or pkg.stage == "system":
            continue
        assert pkg.id in book.packages, pkg.id
        ours, theirs = (pkg.stage, pkg.script, set(pkg.deps)), book.packages[pkg.id]
        assert ours == (
            theirs.stage,
            theirs.script,
            set(theirs.deps) | (extra if pkg.id == "make-tmp" else set()),
        )
    assert set(book.packages) - set(debian.packages) == set()


def test_every_profile_plans_offline_and_names_only_built_scripts() -> None:
    """No profile names a script of draft/ (never built), and every script in packages/ is used."""
    scripts_dir = REPO / "bootstrap" / "lfs" / "packages"
    used: set[str] = set()
    for path in PROFILES:
        loaded = load_profile(str(path))
        make_plan(loaded, StoreDir("/nix/store"), "0" * 64)  # md5-only sources are weak pins, not errors
        for pkg in loaded.profile.packages.values():
            assert not pkg.script.startswith("draft/"), (path, pkg.id)
            used.add(pkg.script)
    assert {f"packages/{p.name}" for p in scripts_dir.glob("*.sh")} == used


def test_a_minimal_profile_parses_into_values() -> None:
    p = parse_profile(MINIMAL, "t.toml")
    assert [s.name for s in p.stages] == ["one", "two"]
    assert list(p.packages) == ["a", "b", "c"]
    a = p.packages["a"]
    assert a.script == "packages/a.sh"
    assert a.sources[0].file == "a-1.tar.gz"
    assert a.sources[0].key == "packages.a.sources[0]"
    assert p.packages["b"].deps == ("a",)


def test_mirror_urls_expand_to_every_base() -> None:
    text = MINIMAL.replace("https://example.org/a-1.tar.gz", "mirror://gnu/a/a-1.tar.gz")
    text = '[mirrors]\ngnu = ["https://ftp.gnu.org/gnu", "https://ftpmirror.gnu.org/"]\n' + text
    source = parse_profile(text, "t.toml").packages["a"].sources[0]
    assert source.urls == ("https://ftp.gnu.org/gnu/a/a-1.tar.gz", "https://ftpmirror.gnu.org/a/a-1.tar.gz")


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (('version = "1"', "version = 1"), "packages.a.version", "must be a str"),
        (('version = "1"', 'version = "1"\nflavour = "x"'), "packages.a.flavour", "unknown key"),
        (('deps = ["a"]', 'deps = ["nope"]'), "packages.b.deps[0]", "not a declared package"),
        (('stage = "two"', 'stage = "three"'), "packages.c.stage", "not a declared stage"),
        (
            ('stage = "two"\nversion = "3"', 'stage = "two"\nversion = "3"\ndeps = ["a"]'),
            "packages.c.deps[0]",
            "in stage 'one', not 'two'",
        ),
        (("ab" * 32, "xyz"), "packages.a.sources[0].sha256", "not a lowercase hex sha256"),
        (("https://example.org", "mirror://nowhere"), "packages.a.sources[0].url", "mirror 'nowhere'"),
        (
            ('version = "2"', 'version = "2"\npatches = ["fix.patch"]'),
            "packages.b.patches[0]",
            "names no source",
        ),
        (
            ('version = "2"', 'version = "2"\nenv = { out = "x" }'),
            "packages.b.env.out",
            "cannot be overridden",
        ),
        (('name = "two"', 'name = "two"\ninputs = ["three"]'), "stages[1].inputs[0]", "not an earlier stage"),
        (("[packages.c]", "[packages.seed]"), "packages.seed", "reserved"),
        (('name = "t"', 'name = "t"\n[seed]\nfiles = ["relative"]'), "seed.files[0]", "absolute"),
        (('name = "t"', 'name = "t"\n[seed]\nwrap = { perl = 3 }'), "seed.wrap.perl", "must be a dict"),
        (('name = "t"', 'name = "t"\n[seed]\nwrap.perl = { "X-Y" = "a" }'), "seed.wrap.perl.X-Y", "VAR ="),
    ],
)
def test_schema_errors_name_file_key_and_problem(edit: tuple[str, str], key: str, words: str) -> None:
    old, new = edit
    assert old in MINIMAL
    with pytest.raises(ConfigError) as e:
        parse_profile(MINIMAL.replace(old, new, 1), "t.toml")
    assert e.value.file == "t.toml"
    assert e.value.key == key
    assert words in str(e.value)
    assert str(e.value).startswith(f"t.toml: {key}: ")


def test_invalid_toml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_profile("[profile\nname=", "t.toml")


def test_a_missing_script_names_the_package(tmp_path: Path) -> None:
    (tmp_path / "builder.sh").write_text("true\n")
    (tmp_path / "p.toml").write_text(MINIMAL)
    with pytest.raises(ConfigError) as e:
        load_profile(str(tmp_path / "p.toml"))
    assert e.value.key == "packages.a.script"
    assert "packages/a.sh" in str(e.value)


def test_pin_fills_and_updates_hashes_keeping_comments_and_layout(tmp_path: Path) -> None:
    text = MINIMAL.replace(f', sha256 = "{"ab" * 32}"', "").replace(
        "[packages.a]", "# the first one\n[packages.a]"
    )
    text = text.replace(
        'version = "2"', 'version = "2"  # keep me\nsources = [{ url = "https://e.org/b.tar" }]'
    )
    path = tmp_path / "p.toml"
    path.write_text(text)
    profile = parse_profile(text, str(path))
    assert profile.packages["a"].sources[0].sha256 is None
    doc = read_document(str(path))
    changed = pin_sources(doc, lambda pid, i, s: ("cd" * 32) if pid == "a" else None, profile)
    assert changed == ["packages.a.sources[0]"]
    out = doc.as_string()
    assert "# the first one" in out and "# keep me" in out
    assert out.replace(f', sha256 = "{"cd" * 32}"', "") == text
    again = parse_profile(out, str(path))
    assert again.packages["a"].sources[0].sha256 == "cd" * 32
    assert tomlkit.parse(out)["packages"]["b"]["sources"][0].get("sha256") is None  # type: ignore[index]
