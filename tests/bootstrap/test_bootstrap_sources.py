"""Sources: the mirror, fixed outputs realised from it, `--from-debian` (repacks refused) and `pin`."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storekit.bootstrap.config import Source, parse_profile
from storekit.bootstrap.debian import deb_src_lines, fetch_from_debian, prepare_apt
from storekit.bootstrap.plan import source_derivation
from storekit.bootstrap.sources import check_file, fetch_sources, realise_source
from storekit.cli import app
from storekit.errors import HashMismatch, StorekitError
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for

UPSTREAM = b"upstream tarball bytes\n"
REPACK = b"debian repacked bytes\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source(**kw: object) -> Source:
    values: dict[str, object] = {"file": "m4-1.4.19.tar.xz", "urls": ("https://a.example/m4-1.4.19.tar.xz",),
                                 "sha256": sha(UPSTREAM), "key": "packages.m4.sources[0]"}  # fmt: skip
    values.update(kw)
    return Source(**values)  # type: ignore[arg-type]


def test_a_source_is_realised_from_the_mirror_as_its_fixed_output(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    store = LocalStore(local_spec_for(str(tmp_path / "store")))
    planned = source_derivation(source(), store.store_dir)
    with pytest.raises(StorekitError, match="storekit bootstrap sources"):
        realise_source(store, planned, source(), str(mirror))
    (mirror / "m4-1.4.19.tar.xz").write_bytes(REPACK)
    with pytest.raises(HashMismatch) as e:
        realise_source(store, planned, source(), str(mirror))
    assert sha(UPSTREAM) in str(e.value) and sha(REPACK) in str(e.value)
    assert not store.is_valid_path(planned.out)
    (mirror / "m4-1.4.19.tar.xz").write_bytes(UPSTREAM)
    assert realise_source(store, planned, source(), str(mirror)) is True
    info = store.lookup_path_info(planned.out)
    assert info is not None and info.deriver == planned.drv_path
    assert info.ca is not None and info.ca.startswith("fixed:sha256:")
    assert Path(store.real_path(planned.out)).read_bytes() == UPSTREAM
    assert realise_source(store, planned, source(), None) is False  # valid already: no mirror needed
    store.close()


def test_a_file_must_match_both_the_pinned_sha256_and_the_books_md5(tmp_path: Path) -> None:
    """A sha256 pinned from another distribution is checked against the book's md5 as well."""
    path = tmp_path / "m4-1.4.19.tar.xz"
    path.write_bytes(UPSTREAM)
    check_file(str(path), source(md5=hashlib.md5(UPSTREAM).hexdigest()))
    wrong_md5 = hashlib.md5(REPACK).hexdigest()
    with pytest.raises(HashMismatch) as e:
        check_file(str(path), source(md5=wrong_md5))
    assert f"md5:{wrong_md5}" in str(e.value) and hashlib.md5(UPSTREAM).hexdigest() in str(e.value)
    with pytest.raises(HashMismatch, match="sha256:"):
        check_file(str(path), source(sha256=sha(REPACK), md5=hashlib.md5(UPSTREAM).hexdigest()))


def test_fetch_tries_each_url_and_keeps_only_verified_bytes(tmp_path: Path) -> None:
    tried: list[str] = []

    def download(url: str, path: str) -> None:
        tried.append(url)
        if "bad" in url:
            raise OSError("404")
        Path(path).write_bytes(REPACK if "repack" in url else UPSTREAM)

    urls = ("https://bad.example/x", "https://repack.example/x", "https://good.example/x")
    results = fetch_sources([source(urls=urls)], str(tmp_path), download)
    assert results[0].status == "fetched" and results[0].detail == "https://good.example/x"
    assert tried == list(urls)
    assert (tmp_path / "m4-1.4.19.tar.xz").read_bytes() == UPSTREAM
    assert [p.name for p in tmp_path.iterdir()] == ["m4-1.4.19.tar.xz"]  # no partial files left
    assert fetch_sources([source()], str(tmp_path), download)[0].status == "present"
    failed = fetch_sources([source(file="y.tar", urls=urls[:2])], str(tmp_path), download)[0]
    assert failed.status == "failed" and "404" in failed.detail and "hash mismatch" in failed.detail


class FakeApt:
    """Stands in for apt-get: `source --download-only` writes the files a Debian source package has."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], cwd: str) -> None:
        self.calls.append(list(argv))
        if "source" in argv:
            for name, data in self.files.items():
                (Path(cwd) / name).write_bytes(data)


def test_from_debian_takes_a_byte_identical_orig_under_the_upstream_name(tmp_path: Path) -> None:
    apt = FakeApt({"m4_1.4.19.orig.tar.xz": UPSTREAM, "m4_1.4.19-3.dsc": b"dsc"})
    results = fetch_from_debian(
        [source(debian="m4=1.4.19-3")], str(tmp_path / "m"), apt_dir=str(tmp_path / "apt"), run=apt
    )
    assert results[0].status == "fetched", results[0].detail
    assert (tmp_path / "m" / "m4-1.4.19.tar.xz").read_bytes() == UPSTREAM
    assert apt.calls[-1][-3:] == ["source", "--download-only", "m4=1.4.19-3"]


class BrokenApt(FakeApt):
    """apt-get failing as it does when a file of the source package is gone from the archive."""

    def __call__(self, argv: Sequence[str], cwd: str) -> None:
        self.calls.append(list(argv))
        if "source" in argv:
            raise StorekitError("E: Failed to fetch .../m4_1.4.19-3.debian.tar.xz  404  Not Found")


def test_from_debian_fetches_what_apt_cannot_by_its_url_pinned(tmp_path: Path) -> None:
    """apt fails for the whole source package when its .debian.tar.xz is gone; the orig the profile
    pins is still at its URL, and is taken from there only with the pinned sha256."""
    tried: list[str] = []

    def download(url: str, path: str) -> None:
        tried.append(url)
        Path(path).write_bytes(REPACK if "repack" in url else UPSTREAM)

    apt = BrokenApt({})
    results = fetch_from_debian(
        [source(debian="m4=1.4.19-3")],
        str(tmp_path / "m"),
        apt_dir=str(tmp_path / "a"),
        run=apt,
        download=download,
    )
    assert results[0].status == "fetched", results[0].detail
    assert "by its URL: apt could not fetch m4=1.4.19-3" in results[0].detail
    assert (tmp_path / "m" / "m4-1.4.19.tar.xz").read_bytes() == UPSTREAM
    assert tried == ["https://a.example/m4-1.4.19.tar.xz"]
    wrong = fetch_from_debian(
        [source(file="n.tar", urls=("https://repack.example/n.tar",), debian="m4=1.4.19-3")],
        str(tmp_path / "m"),
        apt_dir=str(tmp_path / "a"),
        run=apt,
        download=download,
    )
    assert wrong[0].status == "failed"
    assert "404  Not Found" in wrong[0].detail and "hash mismatch" in wrong[0].detail
    assert not (tmp_path / "m" / "n.tar").exists()


def test_from_debian_refuses_a_repack_with_both_hashes(tmp_path: Path) -> None:
    apt = FakeApt({"make-dfsg_4.3.orig.tar.gz": REPACK})
    results = fetch_from_debian(
        [source(debian="make-dfsg=4.3-4.1")], str(tmp_path / "m"), apt_dir=str(tmp_path / "a"), run=apt
    )
    r = results[0]
    assert r.status == "failed" and "repack" in r.detail
    assert sha(UPSTREAM) in r.detail and sha(REPACK) in r.detail
    assert not (tmp_path / "m" / "m4-1.4.19.tar.xz").exists()


def test_from_debian_before_pinning_trusts_the_books_md5(tmp_path: Path) -> None:
    md5 = hashlib.md5(UPSTREAM).hexdigest()
    apt = FakeApt({"m4_1.4.19.orig.tar.xz": UPSTREAM})
    ok = fetch_from_debian(
        [source(sha256=None, md5=md5, debian="m4")], str(tmp_path / "m"), apt_dir=str(tmp_path / "a"), run=apt
    )
    assert ok[0].status == "fetched"
    apt = FakeApt({"m4_1.4.19.orig.tar.xz": UPSTREAM})
    unpinned = fetch_from_debian(
        [source(file="z.tar", sha256=None, debian="m4")],
        str(tmp_path / "m"),
        apt_dir=str(tmp_path / "a"),
        run=apt,
    )
    assert unpinned[0].status == "failed" and "not pinned" in unpinned[0].detail
    none = fetch_from_debian([source(file="q.tar")], str(tmp_path / "m"), run=apt)
    assert none[0].status == "failed" and "no Debian source package" in none[0].detail


def test_deb_src_lines_from_both_apt_formats(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: https://example.org/apt\nSuites: stable\nComponents: main\n"
    )
    oneline = tmp_path / "x.list"
    oneline.write_text(
        "deb [arch=amd64] http://deb.debian.org/debian-security bookworm-security main\n# deb y z\n"
    )
    assert deb_src_lines([str(deb822), str(oneline)]) == [
        "deb-src http://deb.debian.org/debian bookworm main",
        "deb-src http://deb.debian.org/debian bookworm-updates main",
        "deb-src http://deb.debian.org/debian-security bookworm-security main",
    ]


def test_prepare_apt_updates_a_private_list_once_a_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storekit.bootstrap.debian as debian

    monkeypatch.setattr(debian, "system_sources", lambda: [])
    calls: list[list[str]] = []

    def run(argv: Sequence[str], cwd: str) -> None:
        calls.append(list(argv))
        (tmp_path / "apt" / "lists" / "deb.debian.org_debian_dists_bookworm_main_source_Sources").write_text(
            ""
        )

    config = prepare_apt(str(tmp_path / "apt"), run)
    assert calls and calls[0][-1] == "update"
    assert (tmp_path / "apt" / "sources.list").read_text() == debian.DEFAULT_DEB_SRC
    assert any(o.startswith("-oDir::State::Lists=") for o in config.options)
    prepare_apt(str(tmp_path / "apt"), run)
    assert len(calls) == 1


def test_prepare_apt_names_absolute_paths_for_a_relative_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--mirror ../sources`: apt runs inside the apt dir, so every option must name an absolute path."""
    import storekit.bootstrap.debian as debian

    monkeypatch.setattr(debian, "system_sources", lambda: [])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    seen: list[tuple[list[str], str]] = []

    def run(argv: Sequence[str], cwd: str) -> None:
        seen.append((list(argv), cwd))
        for option in argv[1:-1]:
            path = option.split("=", 1)[1]
            assert os.path.isabs(path) and os.path.exists(os.path.join(cwd, path)), option

    config = prepare_apt("../mirror/.apt", run)
    assert seen and all(os.path.isabs(o.split("=", 1)[1]) for o in config.options)
    assert (tmp_path / "mirror" / ".apt" / "sources.list").exists()


def test_pin_writes_sha256_from_the_mirror_and_checks_the_books_md5(tmp_path: Path) -> None:
    md5 = hashlib.md5(UPSTREAM).hexdigest()
    text = (
        '[profile]\nname = "p"\n\n[[stages]]\nname = "s"\n\n# keep this comment\n[packages.m4]\nstage = "s"\n'
        f'version = "1"\nsources = [{{ url = "https://a.example/m4-1.4.19.tar.xz", md5 = "{md5}" }}]\n\n'
        '[packages.sed]\nstage = "s"\nversion = "1"\n'
        f'sources = [{{ url = "https://a.example/sed-4.9.tar.xz", md5 = "{md5}" }}]\n'
    )
    config = tmp_path / "p.toml"
    config.write_text(text)
    (tmp_path / "builder.sh").write_text("")
    (tmp_path / "packages").mkdir()
    for name in ("m4", "sed"):
        (tmp_path / "packages" / f"{name}.sh").write_text("")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "m4-1.4.19.tar.xz").write_bytes(UPSTREAM)
    (mirror / "sed-4.9.tar.xz").write_bytes(REPACK)
    result = CliRunner().invoke(app, ["bootstrap", "pin", str(config), "--mirror", str(mirror)])
    assert result.exit_code == 0, result.output
    assert "pinned 1 source(s)" in result.output and "does not have the book's md5" in result.output
    profile = parse_profile(config.read_text(), "p.toml")
    assert profile.packages["m4"].sources[0].sha256 == sha(UPSTREAM)
    assert profile.packages["sed"].sources[0].sha256 is None
    assert "# keep this comment" in config.read_text()


def test_graph_cli(tmp_path: Path) -> None:
    config = str(Path(__file__).resolve().parent.parent.parent / "bootstrap" / "lfs" / "mini.toml")
    result = CliRunner().invoke(app, ["bootstrap", "graph", config])
    assert result.exit_code == 0 and result.stdout.startswith('digraph "mini"')
    assert '"seed" -> "m4" [ltail="cluster_seed", lhead="cluster_stage1"];' in result.stdout
    if shutil.which("dot") is None:
        result = CliRunner().invoke(app, ["bootstrap", "graph", config, "--format", "svg"])
        assert isinstance(result.exception, StorekitError)
        assert "apt-get install graphviz" in str(result.exception)
