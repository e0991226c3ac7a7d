"""What the command groups share: how a store is named and opened, how paths are named, how data prints.

Every command that works on a store takes `--store` (`copy`: `--from`/`--to`) with the same help text
and resolves it the same way, through `storekit.config.choose_store`: the option, `$STOREKIT_STORE`,
the config file's `store`, then the embedded default. A store set in the config file is therefore the
one every command uses, not only `nix-conf`.

Nothing heavy is imported here at module level: shell completion imports the command modules, and a
completion must answer in a blink.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from storekit.errors import FileSystemError, InvalidStorePath, StoreError, StorekitError

if TYPE_CHECKING:
    from storekit.config import Config
    from storekit.store.base import Store
    from storekit.store.local import LocalStore
    from storekit.store.specs import StoreSpec
    from storekit.storepath import StoreDir, StorePath

STORE_FORMS = (
    "a store dir (/opt/store) or a URI (local?store=…&real=…, overlay?lower=…&upper=…, "
    "file:///dir?store=…, http(s)://host/…?store=…)"
)
DEFAULT_STORE = "$STOREKIT_STORE, else `store` in the config file, else ~/.local/share/storekit/store"
STORE_HELP = f"The store: {STORE_FORMS}. Default: {DEFAULT_STORE}."


# --- completion (cheap: one directory listing, no store opened) ----------------------------------------


def complete_store_path(ctx: typer.Context, incomplete: str) -> list[str]:
    """The store paths that start with what was typed, once it starts with the store dir.

    Listed from the store's real dir, so paths of a rootless store (`local?store=/opt/store&real=…`,
    whose files are not at /opt/store) complete too, and `.links`, locks and staging dirs do not show.
    Anything else (`result`, `./x.drv`, a path inside a store path) is left to the shell's own file
    completion, which typer installs as the fallback.
    """
    value = ctx.params.get("store")
    sources = ctx.params.get("from_")
    if value is None and isinstance(sources, list) and sources:
        value = sources[0]
    try:
        from storekit.store.specs import LocalStoreSpec

        spec = store_spec(value if isinstance(value, str) else None)
        if not isinstance(spec, LocalStoreSpec) or not incomplete.startswith(spec.store_dir):
            return []
        if "/" in incomplete[len(spec.store_dir) + 1 :]:
            return []
        names = os.listdir(spec.real_dir)
    except (StorekitError, OSError):
        return []
    found = (
        f"{spec.store_dir}/{n}" for n in names if len(n) > 33 and n[32] == "-" and not n.endswith(".lock")
    )
    return sorted(p for p in found if p.startswith(incomplete))


# --- options ------------------------------------------------------------------------------------------

StoreOption = Annotated[str | None, typer.Option("--store", help=STORE_HELP, show_default=False)]
FromOption = Annotated[
    list[str] | None,
    typer.Option(
        "--from",
        help=f"Source store ({STORE_FORMS}); repeat for substituters in priority order. "
        f"Default: {DEFAULT_STORE}.",
        show_default=False,
    ),
]
ToOption = Annotated[
    str | None,
    typer.Option("--to", help=f"Destination store, in the forms --from takes. Default: {DEFAULT_STORE}."),
]
PathsArgument = Annotated[
    list[str],
    typer.Argument(
        help="Store paths (or paths in them, or links to them).",
        autocompletion=complete_store_path,
        show_default=False,
    ),
]
PathArgument = Annotated[
    str,
    typer.Argument(
        help="A store path (or a path in it, or a link to it).",
        autocompletion=complete_store_path,
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (one document) instead of text.")]
KeepFailedOption = Annotated[
    bool,
    typer.Option("--keep-failed", "-K", help="Keep a failed build's directory (its path is printed)."),
]
TrustedKeysOption = Annotated[
    str | None,
    typer.Option(
        "--trusted-public-keys",
        help="'name:base64 …': keys whose signatures to accept, besides the config file's.",
    ),
]
NoCheckSigsOption = Annotated[
    bool, typer.Option("--no-check-sigs", help="Accept paths without a trusted signature.")
]


# --- naming and opening stores --------------------------------------------------------------------------


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
def local_store(value: str | None) -> Iterator[LocalStore]:
    """The local store `value` names: commands that build, run or read logs need files on this machine."""
    with opened_store(value) as store:
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


# --- input and output ---------------------------------------------------------------------------------


@contextmanager
def input_stream(file: str) -> Iterator[BinaryIO]:
    """`file` opened for reading, or stdin for '-'; a file that cannot be opened is a user error."""
    if file == "-":
        yield sys.stdin.buffer
        return
    try:
        f = open(file, "rb")  # noqa: SIM115 - closed below, after the caller is done
    except OSError as e:
        raise FileSystemError(file, f"cannot read '{file}': {e.strerror or e}") from e
    with f:
        yield f


def read_input(file: str) -> bytes:
    """The bytes of `file`, or of stdin for '-'."""
    with input_stream(file) as f:
        try:
            return f.read()
        except OSError as e:  # e.g. a directory
            raise FileSystemError(file, f"cannot read '{file}': {e.strerror or e}") from e


@contextmanager
def output_stream(file: str) -> Iterator[BinaryIO]:
    """`file` opened for writing; a file that cannot be created is a user error."""
    try:
        f = open(file, "wb")  # noqa: SIM115 - closed below, after the caller is done
    except OSError as e:
        raise FileSystemError(file, f"cannot write '{file}': {e.strerror or e}") from e
    with f:
        yield f


def print_json(value: object) -> None:
    """storekit's own JSON: one indented document on stdout, newline-terminated.

    Commands that mirror a Nix command's JSON (`store info`, `build`, `nar ls`, `drv show`) print
    Nix's exact bytes instead.
    """
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


_SIZE_SUFFIXES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """A byte count as Nix takes one (`--max-freed 1G`): digits, then optionally K, M, G or T (x1024)."""
    digits, unit = (text[:-1], text[-1].upper()) if text[-1:].upper() in _SIZE_SUFFIXES else (text, "")
    if not digits.isdigit():
        raise typer.BadParameter(f"'{text}' is not a size: give bytes, or a number with K, M, G or T")
    return int(digits) * _SIZE_SUFFIXES.get(unit, 1)


def show_bytes(n: int) -> str:
    """Nix's `showBytes`."""
    return f"{n / (1024 * 1024):.2f} MiB"
