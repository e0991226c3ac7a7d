"""`storekit run`: run a command that sees a store's files at its logical store dir, without root.

For a store such as `local?store=/opt/store&real=$HOME/opt-store`, programs built for `/opt/store`
are run in a user + mount namespace (bubblewrap) where the real dir is mounted at `/opt/store` and
the rest of the host is where it always is. A store whose files already are at its store dir needs
no namespace; the command is simply run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from storekit.cli._options import StoreOption, local_store
from storekit.errors import StorekitError

if TYPE_CHECKING:
    from storekit.realise.store_view import Entry

NAME = "run"
HELP = "Run a command with the store mounted at its logical store dir (rootless, like nix-user-chroot)."


def command(
    cmd: Annotated[list[str], typer.Argument(help="The command and its arguments (put them after --).")],
    store: StoreOption = None,
) -> None:
    """Run CMD (after `--`) where the store's files are at its store dir; exits with CMD's status."""
    with local_store(store) as s:
        store_dir, real_dir = s.store_dir.path, s.real_dir
    if real_dir == store_dir:
        argv = list(cmd)
    else:
        from storekit.realise.runner import find_bwrap
        from storekit.realise.store_view import view_args

        bwrap = find_bwrap()
        argv = [bwrap, *view_args(store_dir, real_dir, _listdir), "--chdir", os.getcwd(), "--", *cmd]
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        raise StorekitError(f"cannot run '{argv[0]}': {e.strerror}") from e


def _listdir(path: str) -> Sequence[Entry]:
    try:
        with os.scandir(path) as entries:
            return [(e.name, os.readlink(e.path) if e.is_symlink() else None) for e in entries]
    except (FileNotFoundError, NotADirectoryError):
        return []
