"""`storekit nix-conf`: the nix.conf settings real Nix needs to use a store under another prefix.

Real Nix can already use `/opt/store`; it only needs to be told the whole story in one `store =`
setting: the logical store dir, where the database and logs live (Nix would otherwise look in
`/nix/var`), and, for a store kept somewhere the user can write without root, where its files really
are (`real=`). cache.nixos.org only serves `/nix/store` paths, so the default substituter is replaced
by the user's own (from the config file), or by none.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from typing import Annotated

import typer

from storekit.cli._options import StoreOption, print_json, store_spec
from storekit.config import Config, load_config
from storekit.errors import StoreError
from storekit.store.specs import LocalStoreSpec, local_spec_for
from storekit.storepath import DEFAULT_STORE_DIR


def settings(spec: LocalStoreSpec, config: Config) -> dict[str, str]:
    """The nix.conf settings for `spec`, with the config file's substituters and keys."""
    result = {"store": str(spec)}  # percent-encoded as Nix decodes it (specs.encode_query)
    if spec.store_dir != DEFAULT_STORE_DIR or config.substituters:
        result["substituters"] = " ".join(config.substituters)
    if config.trusted_public_keys:
        result["trusted-public-keys"] = " ".join(config.trusted_public_keys)
    if config.secret_key_files:
        result["secret-key-files"] = " ".join(config.secret_key_files)
    return result


def render(spec: LocalStoreSpec, config: Config) -> str:
    """nix.conf text: the settings, each explained by a comment."""
    values = settings(spec, config)
    lines = [
        f"# Real Nix settings for the store dir {spec.store_dir} (written by `storekit nix-conf`).",
        "# Add them to /etc/nix/nix.conf or ~/.config/nix/nix.conf, or export NIX_CONFIG (--env).",
        f"# Nix keeps this store's database in {spec.state_dir} and its build logs in {spec.log_dir}.",
    ]
    if spec.real_dir != spec.store_dir:
        lines.append(
            f"# Its files live in {spec.real_dir}; Nix builds into such a store only in its sandbox."
        )
    lines.append(f"store = {values.pop('store')}")
    if config.substituters or config.trusted_public_keys or config.secret_key_files:
        lines.append(f"# From {config.file}.")
    elif "substituters" in values:
        lines.append(f"# cache.nixos.org serves /nix/store paths only: list caches for {spec.store_dir}.")
    lines += [_line(k, v) for k, v in values.items()]
    return "\n".join(lines) + "\n"


def env_line(spec: LocalStoreSpec, config: Config) -> str:
    """A POSIX shell line exporting the settings as NIX_CONFIG (one setting a line)."""
    text = "\n".join(_line(k, v) for k, v in settings(spec, config).items())
    return f"export NIX_CONFIG={shlex.quote(text)}\n"


def _line(key: str, value: str) -> str:
    return f"{key} = {value}".rstrip()


def _local_spec(
    store: str | None, state: str | None, log: str | None, real: str | None, config: Config
) -> LocalStoreSpec:
    spec = store_spec(store, config)
    if not isinstance(spec, LocalStoreSpec):
        raise StoreError(
            f"'{spec}' is not a local store: real Nix uses a binary cache as a substituter, "
            "not as its store; give a store dir such as /opt/store"
        )
    if real is not None:
        real = _absolute(real)
        # A store kept elsewhere keeps its state next to it, as /opt/store keeps /opt/var/nix.
        parent = posixpath.dirname(real)
        state = state or posixpath.join(parent, "var", "nix")
        log = log or posixpath.join(parent, "var", "log", "nix")
    return local_spec_for(
        spec.store_dir,
        state_dir=_absolute(state) if state else spec.state_dir,
        log_dir=_absolute(log) if log else spec.log_dir,
        real_dir=real or spec.real_dir,
    )


def _absolute(path: str) -> str:
    return posixpath.normpath(os.path.join(os.getcwd(), path))


def nix_conf(
    store: StoreOption = None,
    state: Annotated[
        str | None, typer.Option("--state", help="Database dir. Default: <parent>/var/nix.")
    ] = None,
    log: Annotated[
        str | None, typer.Option("--log", help="Build log dir. Default: <parent>/var/log/nix.")
    ] = None,
    real: Annotated[
        str | None,
        typer.Option(
            "--real",
            help="Where the files really live (no root needed); state and logs then default next to it.",
        ),
    ] = None,
    env: Annotated[bool, typer.Option("--env", help="Print a shell line exporting NIX_CONFIG.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the settings as a JSON object.")] = False,
) -> None:
    """Print the nix.conf settings real Nix needs to use a store under any prefix."""
    config = load_config(os.environ)
    spec = _local_spec(store, state, log, real, config)
    if as_json:
        print_json(settings(spec, config))
    elif env:
        typer.echo(env_line(spec, config), nl=False)
    else:
        typer.echo(render(spec, config), nl=False)
