"""Naming and opening the store a command works on, with no typer: `storekit build`'s plain lines run
without importing typer (see `storekit.cli._build`), and they open stores like every other command.

`storekit.cli._options` re-exports these names, which is where command modules take them from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from storekit.errors import InvalidStorePath, StoreError

TYPE_CHECKING = False  # no `typing` at run time: `storekit build` opens its store through here
if TYPE_CHECKING:
    from storekit.config import Config
    from storekit.store.base import Store
    from storekit.store.local import LocalStore
    from storekit.store.specs import StoreSpec
    from storekit.storepath import StoreDir, StorePath


def cli_config() -> Config:
    """The user's config file (`$XDG_CONFIG_HOME/storekit/config.toml`); missing means all defaults."""
    from storekit.config import load_config

    return load_config(os.environ)


def store_spec(value: str | None, config: Config | None = None) -> StoreSpec:
    """The store a command works on: `value` (from --store), `$STOREKIT_STORE`, the config's, the default.

    The config file is read only when it can matter, so a broken one does not stop `--store X` commands.
    """
    from storekit.config import Config, choose_store

    if config is None:
        config = cli_config() if value is None else Config()
    return choose_store(value, config, os.environ, os.getcwd())


def open_cli_store(
    value: str | None, config: Config | None = None, *, ssh_dir: StoreDir | None = None
) -> Store:
    """Open the store a user named (relative dirs are taken from the cwd), or the default one.

    An `ssh://` store without `?store=` has `ssh_dir` (the store it is copied to or from), else the
    store dir of your store: the far side must have the same store dir as this side anyway.
    """
    from storekit.config import nix_rules
    from storekit.store.open import open_store

    if value is not None and value.startswith("ssh://"):
        from storekit.remote.store import open_ssh_store
        from storekit.storepath import StoreDir

        fallback = ssh_dir or StoreDir(store_spec(None, config).store_dir)
        return open_ssh_store(value, fallback, os.environ.get("NIX_SSHOPTS", ""))
    store = open_store(store_spec(value, config))
    store.behave_as(nix_rules(config or _config_if_readable(), os.environ))
    return store


def _config_if_readable() -> Config:
    """The config file for settings beside the store; a broken one is reported by commands that need it.

    A bad `nix-version` is reported here, though: it changes what storekit accepts.
    """
    from storekit.config import Config
    from storekit.errors import ConfigError

    try:
        return cli_config()
    except ConfigError as e:
        if e.key == "nix-version":
            raise
        return Config()


def cli_store_dir(path: str) -> StoreDir:
    """A store dir named on the command line for computing paths (`storekit path`).

    Computing writes nothing, so without a `nix-version` it is Nix 2.8's arithmetic, names and all;
    with one, that version's name rule. (Stores follow the strictest rule by default: see
    `open_cli_store`.)
    """
    from storekit.config import nix_rules
    from storekit.storepath import NameRule, StoreDir

    rules = nix_rules(_config_if_readable(), os.environ)
    return StoreDir(path, name_rule=rules.name_rule if rules.version is not None else NameRule.NIX_2_8)


@contextmanager
def opened_store(
    value: str | None, config: Config | None = None, *, ssh_dir: StoreDir | None = None
) -> Iterator[Store]:
    """`open_cli_store`, closed on the way out."""
    store = open_cli_store(value, config, ssh_dir=ssh_dir)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def local_store(value: str | None, config: Config | None = None) -> Iterator[LocalStore]:
    """The local store `value` names: commands that build, run or read logs need files on this machine."""
    with opened_store(value, config) as store:
        yield require_local(store)


def require_local(store: Store, command: str = "this command") -> LocalStore:
    """`store` if it is a local store, else a one-line refusal saying what to use instead."""
    from storekit.store.local import LocalStore

    if isinstance(store, LocalStore):
        return store
    from storekit.store.overlay import OverlayStore

    if isinstance(store, OverlayStore):
        raise StoreError(
            f"'{store.uri}' is an overlay store, and {command} works on a local store only "
            f"(the overlay's lower store is '{store.lower.uri}'; its upper store holds rows borrowed "
            "from the lower one, without their files)"
        )
    raise StoreError(
        f"'{store.uri}' is not a local store, and {command} needs one: give a store dir such as "
        "/opt/store or a local?store=… URI"
    )


def resolve_path(store: Store, text: str) -> StorePath:
    """A store path from what a user typed: the path, a path inside it, or a symlink chain to it."""
    seen = 0
    current = text
    while not current.startswith(store.store_dir.path + "/"):
        if not os.path.islink(current) or seen > 40:
            raise InvalidStorePath(f"path '{text}' is not in the store dir '{store.store_dir}'")
        current = os.path.join(os.path.dirname(os.path.abspath(current)), os.readlink(current))
        seen += 1
    return store.parse_path(os.path.normpath(current))
