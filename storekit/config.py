"""The user's config file, `$XDG_CONFIG_HOME/storekit/config.toml`: defaults for every command.

The keys are named after the nix.conf settings they mirror, so a Nix user reads the file at a glance:

    store = "/opt/store"                                   # a store spec, as --store takes
    substituters = ["https://cache.example.org?store=/opt/store"]
    trusted-public-keys = ["cache.example.org-1:base64…"]
    secret-key-files = ["/etc/storekit/cache.secret"]
    nix-version = "2.28"                                   # behave as this Nix where versions differ

The parse is pure (text in, `Config` out) and strict: an unknown key or a value of the wrong type is a
`ConfigError` naming the file and the key, because a silently ignored typo would send paths to the
wrong store. Reading (`read_config`, `load_config`) is the only I/O, and the caller passes the
environment in, so nothing here reads `os.environ`.

Precedence, most specific first: `--store` on the command line, `$STOREKIT_STORE`, the file's
`store`, then the embedded default under `$XDG_DATA_HOME/storekit` (`choose_store`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from storekit.errors import ConfigError, SignatureError, StorekitError
from storekit.frozen import Frozen
from storekit.nixversion import NixRules, NixVersion, rules_for
from storekit.store.specs import StoreSpec, default_store_spec, parse_store_spec

KEYS = ("store", "substituters", "trusted-public-keys", "secret-key-files", "nix-version")


_set = object.__setattr__


class Config(Frozen):
    """The settings of one config file; `file` is where they came from (None: no file, all defaults).

    A frozen value written by hand (`storekit.frozen`): every command reads the config.
    """

    __slots__ = ("file", "nix_version", "secret_key_files", "store", "substituters", "trusted_public_keys")
    __match_args__ = (
        "store", "substituters", "trusted_public_keys", "secret_key_files", "nix_version", "file"
    )  # fmt: skip
    store: str | None
    substituters: tuple[str, ...]
    trusted_public_keys: tuple[str, ...]
    secret_key_files: tuple[str, ...]
    nix_version: str | None
    file: str | None

    def __init__(
        self,
        store: str | None = None,
        substituters: tuple[str, ...] = (),
        trusted_public_keys: tuple[str, ...] = (),
        secret_key_files: tuple[str, ...] = (),
        nix_version: str | None = None,
        file: str | None = None,
    ) -> None:
        _set(self, "store", store)
        _set(self, "substituters", substituters)
        _set(self, "trusted_public_keys", trusted_public_keys)
        _set(self, "secret_key_files", secret_key_files)
        _set(self, "nix_version", nix_version)
        _set(self, "file", file)


def config_path(env: Mapping[str, str]) -> str:
    """`$XDG_CONFIG_HOME/storekit/config.toml`, with XDG's fallback `$HOME/.config`."""
    config_home = env.get("XDG_CONFIG_HOME") or posixpath.join(env.get("HOME", "/"), ".config")
    return posixpath.join(config_home, "storekit", "config.toml")


def parse_config(text: str, file: str) -> Config:
    """Parse and check a config file's text; `file` only names it in errors."""
    import tomlkit  # here, not at import: most users have no config file, and every command reads it
    import tomlkit.exceptions

    try:
        document = tomlkit.parse(text).unwrap()
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(file, "", f"not valid TOML: {e}") from e
    unknown = sorted(set(document) - set(KEYS))
    if unknown:
        raise ConfigError(file, unknown[0], f"unknown key (known keys: {', '.join(KEYS)})")
    store = document.get("store")
    if store is not None:
        store = _store_spec(file, "store", store)
    return Config(
        store=store,
        substituters=tuple(
            _store_spec(file, "substituters", s) for s in _strings(file, document, "substituters")
        ),
        trusted_public_keys=tuple(
            _public_key(file, k) for k in _strings(file, document, "trusted-public-keys")
        ),
        secret_key_files=tuple(_absolute(file, p) for p in _strings(file, document, "secret-key-files")),
        nix_version=_nix_version(file, document.get("nix-version")),
        file=file,
    )


def read_config(path: str) -> Config:
    """Read the config file at `path`; a missing file means all defaults, an unreadable one is an error."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return Config()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, "", f"cannot read the config file: {e}") from e
    return parse_config(text, path)


def load_config(env: Mapping[str, str]) -> Config:
    """The user's config, found through `env` (the CLI passes `os.environ`)."""
    return read_config(config_path(env))


def choose_store(cli_value: str | None, config: Config, env: Mapping[str, str], cwd: str) -> StoreSpec:
    """The store a command works on: `--store`, else `$STOREKIT_STORE`, else the file's, else the default."""
    if cli_value is not None:
        return parse_store_spec(cli_value, base_dir=cwd)
    if not env.get("STOREKIT_STORE") and config.store is not None:
        return parse_store_spec(config.store)
    return default_store_spec(env)


# --- checking values -----------------------------------------------------------------------------------


def _strings(file: str, document: Mapping[str, object], key: str) -> list[str]:
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(file, key, f'must be a list of strings, e.g. {key} = ["…"]')
    return value


def _store_spec(file: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(file, key, 'must be a string, e.g. store = "/opt/store"')
    try:
        parse_store_spec(value)
    except StorekitError as e:
        raise ConfigError(file, key, str(e)) from e
    return value


def _public_key(file: str, value: str) -> str:
    from storekit.signing import PublicKey  # only a config with keys needs it (CLI start-up)

    try:
        PublicKey.parse(value)
    except SignatureError as e:
        raise ConfigError(file, "trusted-public-keys", str(e)) from e
    return value


def _nix_version(file: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(file, "nix-version", 'must be a string, e.g. nix-version = "2.28"')
    try:
        NixVersion.parse(value)
    except StorekitError as e:
        raise ConfigError(file, "nix-version", str(e)) from e
    return value


def nix_rules(config: Config, env: Mapping[str, str]) -> NixRules:
    """The Nix to behave as: `$STOREKIT_NIX_VERSION`, else the file's `nix-version`, else the strictest."""
    text = env.get("STOREKIT_NIX_VERSION") or config.nix_version
    try:
        return rules_for(text)
    except StorekitError as e:
        raise ConfigError("$STOREKIT_NIX_VERSION", "", str(e)) from e


def _absolute(file: str, value: str) -> str:
    if not value.startswith("/"):
        raise ConfigError(file, "secret-key-files", f"'{value}' must be an absolute path")
    return value
