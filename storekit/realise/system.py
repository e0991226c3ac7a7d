"""Nix's `system` name for this machine, apart from the builder (`storekit.realise.runner` re-exports it).

A `storekit build` of a recipe instantiates it for this system before it knows whether anything needs
building (`storekit.realise.valid`); importing the builder to learn the name would cost that answer
what building costs to start.
"""

from __future__ import annotations

import os


def host_system() -> str:
    """Nix's `system` for this machine (`x86_64-linux`, `aarch64-linux`, …).

    From `os.uname()`, which is what `platform.machine()` and `platform.system()` read: importing
    `platform` costs every `storekit build` about 2 ms of start-up.
    """
    uname = os.uname()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(uname.machine, uname.machine)
    return f"{machine}-{uname.sysname.lower()}"
