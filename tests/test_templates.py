"""`storekit template`: the templates as package data, and writing them the way `nix flake init` does.

The byte-for-byte comparison with real `nix flake init` is in tests/interop/test_flake_interop.py;
here are the rules storekit must follow on its own (modes, symlinks, refusals before any write, git).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storekit.cli import app
from storekit.config import Config, parse_config
from storekit.errors import ConfigError, FileSystemError, StorekitError
from storekit.signing import SecretKey
from storekit.store.specs import local_spec_for
from storekit.templates import (
    Kind,
    init_template,
    list_templates,
    parse_index,
    template_files,
    templates_root,
)

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"


def storekit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (with its error boundary) from this checkout."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def tree(root: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every entry under root: (kind, permission bits, contents or link target)."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            st = full.lstat()
            rel = full.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                entries[rel] = ("symlink", 0, os.fsencode(os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                entries[rel] = ("dir", stat.S_IMODE(st.st_mode), b"")
            else:
                entries[rel] = ("file", stat.S_IMODE(st.st_mode), full.read_bytes())
    return entries


@pytest.fixture
def custom_root(tmp_path: Path) -> Path:
    """A template tree with what the shipped ones lack: a subdirectory, a symlink, an executable."""
    root = tmp_path / "templates"
    (root / "demo" / "sub").mkdir(parents=True)
    (root / "templates.toml").write_text('[demo]\ndescription = "A demo"\n')
    (root / "demo" / "README.md").write_text("demo\n")
    (root / "demo" / "sub" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "demo" / "sub" / "run.sh").chmod(0o755)
    (root / "demo" / "link").symlink_to("README.md")
    return root


# --- the templates themselves --------------------------------------------------------------------


def test_package_data_is_the_repository_templates() -> None:
    assert templates_root().resolve() == TEMPLATES.resolve()
    assert (REPO / "storekit" / "templates").is_symlink()


def test_index_and_directories_agree() -> None:
    names = {t.name for t in list_templates()}
    dirs = {p.name for p in TEMPLATES.iterdir() if p.is_dir()}
    assert names == dirs == {"opt-store", "binary-cache", "lfs"}
    for name in names:
        assert (TEMPLATES / name / "README.md").is_file(), name
        assert all(t.description for t in list_templates())


def test_opt_store_nix_conf_is_what_nix_conf_prints() -> None:
    from storekit.cli.nixconf import render

    text = (TEMPLATES / "opt-store" / "nix.conf").read_text()
    assert text.startswith(render(local_spec_for("/opt/store"), Config()))
    assert "experimental-features = nix-command flakes" in text


def test_binary_cache_config_toml_parses_once_the_key_is_filled_in() -> None:
    text = (TEMPLATES / "binary-cache" / "config.toml").read_text()
    with pytest.raises(ConfigError) as e:
        parse_config(text, "config.toml")
    assert e.value.key == "trusted-public-keys"
    key = str(SecretKey.generate("cache.example.org-1").public_key())
    config = parse_config(
        text.replace("cache.example.org-1:REPLACE-WITH-THE-CONTENTS-OF-cache.public", key), "c"
    )
    assert config.store == "/opt/store"
    assert config.substituters == ("http://cache.example.org?store=/opt/store",)
    assert config.trusted_public_keys == (key,)


def test_binary_cache_nix_conf_names_the_same_cache_as_config_toml() -> None:
    nix_conf = (TEMPLATES / "binary-cache" / "nix.conf").read_text()
    assert "substituters = http://cache.example.org?store=/opt/store\n" in nix_conf
    assert "store = local?store=/opt/store&state=/opt/var/nix&log=/opt/var/log/nix\n" in nix_conf


def test_parse_index_rejects_a_template_without_description() -> None:
    with pytest.raises(ConfigError) as e:
        parse_index('[x]\ndescripton = "typo"\n', "templates.toml")
    assert e.value.key == "x"
    assert [t.name for t in parse_index('[b]\ndescription="B"\n[a]\ndescription="A"\n', "f")] == ["a", "b"]


# --- writing ---------------------------------------------------------------------------------------


def test_init_writes_nix_flake_init_modes_and_symlinks(custom_root: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "project"  # created, parents too
    written = init_template("demo", dest, custom_root)
    assert sorted(p.relative_to(dest).as_posix() for p in written) == ["README.md", "link", "sub/run.sh"]
    file_mode, dir_mode = 0o666 & ~umask(), 0o777 & ~umask()
    assert tree(dest) == {
        "README.md": ("file", file_mode, b"demo\n"),
        "link": ("symlink", 0, b"README.md"),
        "sub": ("dir", dir_mode, b""),
        # Nix 2.8 writes every file with the default mode: the executable bit is not kept.
        "sub/run.sh": ("file", file_mode, b"#!/bin/sh\necho hi\n"),
    }


def test_init_again_keeps_identical_files_and_writes_nothing(custom_root: Path, tmp_path: Path) -> None:
    init_template("demo", tmp_path, custom_root)
    before = tree(tmp_path)
    assert init_template("demo", tmp_path, custom_root) == ()
    assert tree(tmp_path) == before


def test_init_refuses_a_differing_file_before_writing_anything(custom_root: Path, tmp_path: Path) -> None:
    init_template("demo", tmp_path, custom_root)
    (tmp_path / "README.md").unlink()
    (tmp_path / "sub" / "run.sh").write_text("mine\n")
    with pytest.raises(FileSystemError) as e:
        init_template("demo", tmp_path, custom_root)
    assert e.value.path == str(tmp_path / "sub" / "run.sh")
    assert "refusing to overwrite existing file" in str(e.value)
    # README.md sorts before sub/run.sh, but nothing is written once a conflict is known.
    assert not (tmp_path / "README.md").exists()
    assert (tmp_path / "sub" / "run.sh").read_text() == "mine\n"


def test_init_refuses_a_differing_symlink(custom_root: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("elsewhere")
    with pytest.raises(FileSystemError, match="existing symlink"):
        init_template("demo", tmp_path, custom_root)


def test_init_in_a_git_work_tree_adds_the_files_with_intent_to_add(custom_root: Path, tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    init_template("demo", tmp_path, custom_root)
    listed = subprocess.run(
        ["git", "-C", str(tmp_path), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(listed) == ["README.md", "link", "sub/run.sh"]


def test_unknown_template_names_the_known_ones() -> None:
    with pytest.raises(StorekitError, match=r"no template named 'nope'.*lfs"):
        template_files("nope")


def test_template_files_are_the_files_on_disk() -> None:
    files = template_files("opt-store")
    assert [f.path for f in files] == ["README.md", "flake.nix", "nix.conf"]
    assert all(f.kind is Kind.FILE for f in files)
    assert files[1].data == (TEMPLATES / "opt-store" / "flake.nix").read_bytes()


# --- the CLI -----------------------------------------------------------------------------------------


def test_cli_list() -> None:
    result = CliRunner().invoke(app, ["template", "list"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["binary-cache", "lfs", "opt-store"]
    assert (
        lines[2] == f"opt-store     {next(t.description for t in list_templates() if t.name == 'opt-store')}"
    )
    as_json = json.loads(CliRunner().invoke(app, ["template", "list", "--json"]).stdout)
    assert as_json == {t.name: {"description": t.description} for t in list_templates()}


def test_cli_init_into_a_relative_dir(tmp_path: Path) -> None:
    proc = storekit("template", "init", "lfs", "my-lfs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["wrote: my-lfs/README.md", "wrote: my-lfs/flake.nix"]
    assert (tmp_path / "my-lfs" / "flake.nix").read_bytes() == (TEMPLATES / "lfs" / "flake.nix").read_bytes()


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    proc = storekit("template", "init", "nope", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no template named 'nope'")
    (tmp_path / "flake.nix").write_text("{ }\n")
    proc = storekit("template", "init", "lfs", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: refusing to overwrite existing file 'flake.nix'")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "README.md").exists()
