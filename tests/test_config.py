"""The config file (`$XDG_CONFIG_HOME/storekit/config.toml`) and `storekit nix-conf`, which uses it.

That real Nix accepts what `nix-conf` prints is tested in tests/interop/test_flake_interop.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storekit.config import Config, choose_store, config_path, load_config, parse_config, read_config
from storekit.errors import ConfigError
from storekit.signing import SecretKey
from storekit.store.specs import FileCacheSpec, LocalStoreSpec

REPO = Path(__file__).resolve().parent.parent
KEY = str(SecretKey.generate("cache.example.org-1").public_key())


def storekit(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args], env=full_env, cwd=cwd, capture_output=True, text=True
    )


# --- parsing ---------------------------------------------------------------------------------------


def test_parse_all_keys() -> None:
    text = f"""
# comments are fine
store = "local?store=/opt/store&state=/srv/nix"
substituters = ["file:///srv/cache?store=/opt/store", "https://cache.example.org?store=/opt/store"]
trusted-public-keys = ["{KEY}"]
secret-key-files = ["/etc/storekit/cache.secret"]
"""
    assert parse_config(text, "f.toml") == Config(
        store="local?store=/opt/store&state=/srv/nix",
        substituters=("file:///srv/cache?store=/opt/store", "https://cache.example.org?store=/opt/store"),
        trusted_public_keys=(KEY,),
        secret_key_files=("/etc/storekit/cache.secret",),
        file="f.toml",
    )


def test_empty_file_means_defaults() -> None:
    assert parse_config("", "f.toml") == Config(file="f.toml")


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('stor = "/opt/store"', "stor", "unknown key"),
        ("store = 1", "store", "must be a string"),
        ('store = "relative/store"', "store", "relative path"),
        ('store = "ftp://x"', "store", "unsupported scheme"),
        ('substituters = "file:///c"', "substituters", "must be a list of strings"),
        ("substituters = [1]", "substituters", "must be a list of strings"),
        ('trusted-public-keys = ["nocolon"]', "trusted-public-keys", "corrupt"),
        ('trusted-public-keys = ["k:AAAA"]', "trusted-public-keys", "3 bytes, expected 32"),
        ('secret-key-files = ["key.sec"]', "secret-key-files", "absolute path"),
        ("[store]\npath = 1", "store", "must be a string"),
        ('store = "/opt/store', "", "not valid TOML"),
    ],
)
def test_bad_config_names_file_and_key(text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "/home/u/.config/storekit/config.toml")
    assert e.value.key == key
    assert e.value.file == "/home/u/.config/storekit/config.toml"
    assert words in str(e.value)
    assert str(e.value).startswith(f"/home/u/.config/storekit/config.toml: {key}".rstrip())


def test_config_path_follows_xdg() -> None:
    assert config_path({"HOME": "/home/u"}) == "/home/u/.config/storekit/config.toml"
    assert config_path({"HOME": "/home/u", "XDG_CONFIG_HOME": "/x"}) == "/x/storekit/config.toml"
    assert config_path({"HOME": "/home/u", "XDG_CONFIG_HOME": ""}) == "/home/u/.config/storekit/config.toml"


def test_read_missing_and_present(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert load_config(env) == Config()
    path = tmp_path / ".config" / "storekit" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('store = "/opt/store"\n')
    assert load_config(env) == Config(store="/opt/store", file=str(path))
    path.write_bytes(b"store = \xff\n")
    with pytest.raises(ConfigError, match="cannot read"):
        read_config(str(path))


def test_store_precedence() -> None:
    config = Config(store="/srv/store")
    home = {"HOME": "/home/u"}
    assert (
        choose_store("/a/store", config, {**home, "STOREKIT_STORE": "/b/store"}, "/").store_dir == "/a/store"
    )
    assert choose_store("rel/store", config, home, "/work").store_dir == "/work/rel/store"
    assert choose_store(None, config, {**home, "STOREKIT_STORE": "/b/store"}, "/").store_dir == "/b/store"
    assert choose_store(None, config, home, "/").store_dir == "/srv/store"
    default = choose_store(None, Config(), home, "/")
    assert isinstance(default, LocalStoreSpec)
    assert default.store_dir == "/home/u/.local/share/storekit/store"
    cache = choose_store(None, Config(store="file:///c?store=/opt/store"), home, "/")
    assert isinstance(cache, FileCacheSpec)


# --- storekit nix-conf ---------------------------------------------------------------------------


def test_nix_conf_for_opt_store(tmp_path: Path) -> None:
    proc = storekit("nix-conf", "--store", "/opt/store", env={"HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    settings = [line for line in proc.stdout.splitlines() if not line.startswith("#")]
    assert settings == [
        "store = local?store=/opt/store&state=/opt/var/nix&log=/opt/var/log/nix",
        "substituters =",
    ]


def test_nix_conf_env_is_a_shell_line_exporting_the_settings(tmp_path: Path) -> None:
    proc = storekit("nix-conf", "--store", "/o p/store", "--env", env={"HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    shown = subprocess.run(
        ["sh", "-c", proc.stdout + 'printf "%s" "$NIX_CONFIG"'], capture_output=True, text=True, check=True
    ).stdout
    assert shown == (
        "store = local?store=/o%20p/store&state=/o%20p/var/nix&log=/o%20p/var/log/nix\nsubstituters ="
    )


def test_nix_conf_real_keeps_state_next_to_the_files(tmp_path: Path) -> None:
    proc = storekit(
        "nix-conf", "--store", "/opt/store", "--real", "home/opt/store", "--json",
        env={"HOME": str(tmp_path)}, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "store": f"local?store=/opt/store&state={tmp_path}/home/opt/var/nix"
        f"&log={tmp_path}/home/opt/var/log/nix&real={tmp_path}/home/opt/store",
        "substituters": "",
    }


def test_nix_conf_takes_store_substituters_and_keys_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "xdg" / "storekit" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(
        f'store = "/srv/store"\nsubstituters = ["http://c?store=/srv/store"]\n'
        f'trusted-public-keys = ["{KEY}"]\nsecret-key-files = ["/etc/k.sec"]\n'
    )
    proc = storekit("nix-conf", env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-5:] == [
        "store = local?store=/srv/store&state=/srv/var/nix&log=/srv/var/log/nix",
        f"# From {path}.",
        "substituters = http://c?store=/srv/store",
        f"trusted-public-keys = {KEY}",
        "secret-key-files = /etc/k.sec",
    ]
    # $STOREKIT_STORE is more specific than the file; --store more than both.
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "STOREKIT_STORE": "/e/store"}
    assert "store = local?store=/e/store&" in storekit("nix-conf", env=env).stdout
    assert "store = local?store=/f/store&" in storekit("nix-conf", "--store", "/f/store", env=env).stdout


def test_nix_conf_errors(tmp_path: Path) -> None:
    proc = storekit("nix-conf", "--store", "file:///c?store=/opt/store", env={"HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: 'file:///c?store=/opt/store' is not a local store")
    bad = tmp_path / ".config" / "storekit" / "config.toml"
    bad.parent.mkdir(parents=True)
    bad.write_text("substituters = 'x'\n")
    proc = storekit("nix-conf", env={"HOME": str(tmp_path)})
    assert (proc.returncode, proc.stderr) == (
        1,
        f'error: {bad}: substituters: must be a list of strings, e.g. substituters = ["…"]\n',
    )
