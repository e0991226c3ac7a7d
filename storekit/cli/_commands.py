"""The command table: which module holds each `storekit` command (read by `main` and by `_app`)."""

from __future__ import annotations

#: Command name -> (module, attribute). A `typer.Typer` attribute is a group, a function a single command.
#: Modules are imported only when their command runs (or for `--help`), so `storekit hash path` does not
#: pay for importing the builder, the caches and the ELF editor: startup is most of a short command's time.
COMMANDS: dict[str, tuple[str, str]] = {
    "hash": ("storekit.cli.hash", "app"),
    "nar": ("storekit.cli.nar", "app"),
    "path": ("storekit.cli.path", "app"),
    "drv": ("storekit.cli.drv", "app"),
    "key": ("storekit.cli.key", "app"),
    "store": ("storekit.cli.store", "app"),
    "copy": ("storekit.cli.copy", "copy"),
    "provision": ("storekit.cli.provision", "provision"),
    "cache": ("storekit.cli.cache", "app"),
    "build": ("storekit.cli.build", "command"),
    "log": ("storekit.cli.log", "command"),
    "run": ("storekit.cli.run", "command"),
    "relocate": ("storekit.cli.relocate", "relocate_command"),
    "elf": ("storekit.cli.elf", "app"),
    "patchelf": ("storekit.cli.patchelf", "command"),
    "bootstrap": ("storekit.cli.bootstrap", "app"),
    "template": ("storekit.cli.template", "app"),
    "nix-conf": ("storekit.cli.nixconf", "nix_conf"),
    "nix-store": ("storekit.cli.nixstore", "command"),
}
