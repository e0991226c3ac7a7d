"""`--builders` in Nix 2.8's syntax (`machines.cc`): one machine per line or `;`-separated entry.

Each entry is whitespace-separated columns, `-` or missing meaning the default:

    URI  SYSTEMS  SSH-KEY  MAX-JOBS  SPEED-FACTOR  SUPPORTED-FEATURES  MANDATORY-FEATURES  HOST-KEY

`URI` without a scheme gets `ssh://`; `SYSTEMS` and the features are comma-separated (default: this
machine's system); `MAX-JOBS` and `SPEED-FACTOR` default to 1 (a speed factor below 1 counts as 1);
`HOST-KEY` is base64, like the URI's `base64-ssh-public-host-key`. `#` starts a comment and
`@FILE` reads more entries from FILE (a missing file is no machine, as in Nix). Parsing is pure: the
caller hands in a function that reads `@` files.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection
from dataclasses import dataclass

from storekit.errors import StorekitError

_SPECIAL = ("auto", "daemon", "local")


@dataclass(frozen=True, slots=True)
class Machine:
    """One remote builder, as Nix's `Machine`."""

    store_uri: str
    systems: tuple[str, ...]
    ssh_key: str = ""
    max_jobs: int = 1
    speed_factor: int = 1
    supported_features: frozenset[str] = frozenset()
    mandatory_features: frozenset[str] = frozenset()
    host_key: str = ""

    def can_build(self, system: str, features: Collection[str]) -> bool:
        """Nix's test: the system is one of ours (or `builtin`), every required feature supported,
        every mandatory feature required."""
        wanted = set(features)
        supported = self.supported_features | self.mandatory_features
        return (
            (system == "builtin" or system in self.systems)
            and wanted <= supported
            and self.mandatory_features <= wanted
        )

    def with_params(self) -> str:
        """The store URI with the machine's ssh key and host key as URI parameters (Nix's `openStore`)."""
        params = [("ssh-key", self.ssh_key), ("base64-ssh-public-host-key", self.host_key)]
        extra = "&".join(f"{k}={v}" for k, v in params if v and f"{k}=" not in self.store_uri)
        if not extra:
            return self.store_uri
        return self.store_uri + ("&" if "?" in self.store_uri else "?") + extra


def parse_builders(text: str, this_system: str, read_file: Callable[[str], str | None]) -> list[Machine]:
    """The machines of a `--builders` value; `read_file(path)` gives an `@file`'s text (None: missing)."""
    return [_machine(line, this_system) for line in _lines(text, read_file, depth=0)]


def _lines(text: str, read_file: Callable[[str], str | None], depth: int) -> list[str]:
    if depth > 16:
        raise StorekitError("bad machine specification: '@file' entries nest more than 16 deep")
    out: list[str] = []
    for raw in text.replace(";", "\n").split("\n"):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        if line.startswith("@"):
            content = read_file(line[1:].strip())
            if content is not None:
                out += _lines(content, read_file, depth + 1)
            continue
        out.append(line)
    return out


def _machine(line: str, this_system: str) -> Machine:
    tokens = line.split()

    def given(i: int) -> bool:
        return len(tokens) > i and tokens[i] not in ("", "-")

    def number(i: int) -> int:
        if not tokens[i].isdigit():
            raise StorekitError(
                f"bad machine specification: column #{i} of '{line}' ('{tokens[i]}') is not a number"
            )
        return int(tokens[i])

    uri = tokens[0]
    if not (
        "://" in uri or "/" in uri or uri in _SPECIAL or uri.startswith(tuple(f"{s}?" for s in _SPECIAL))
    ):
        uri = "ssh://" + uri
    host_key = tokens[7] if given(7) else ""
    if host_key:
        try:
            base64.b64decode(host_key, validate=True)
        except binascii.Error as e:
            raise StorekitError(
                f"bad machine specification: column #7 of '{line}' is not valid base64: {e}"
            ) from e
    return Machine(
        store_uri=uri,
        systems=tuple(tokens[1].split(",")) if given(1) else (this_system,),
        ssh_key=tokens[2] if given(2) else "",
        max_jobs=number(3) if given(3) else 1,
        speed_factor=max(1, number(4)) if given(4) else 1,
        supported_features=frozenset(tokens[5].split(",")) if given(5) else frozenset(),
        mandatory_features=frozenset(tokens[6].split(",")) if given(6) else frozenset(),
        host_key=host_key,
    )
