"""`ssh://HOST?…` store URIs as Nix 2.8's legacy SSH store reads them, and the `ssh` command they give.

The parameters are Nix's: `store` (the store dir paths are named in, both sides), `remote-store` (the
far side's store, passed on as `--store`), `remote-program` (default `nix-store`; `--serve --write`
is appended), `ssh-key` (`-i`), `compress` (`-C`), `max-connections` (default 1) and
`base64-ssh-public-host-key` (a known-hosts file holding just that key). `$NIX_SSHOPTS` is split on
whitespace, as Nix does, and put before Nix's own options; everything else comes from the user's ssh
config, since it is the `ssh` client that runs. `localhost` runs the command locally through
`bash -c`, as Nix's `fakeSSH` does. Parsing and the argv are pure: the environment and the temporary
dir for the host key are arguments.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import shlex
import urllib.parse
from dataclasses import dataclass

from storekit.errors import StoreError

SCHEME = "ssh://"
DEFAULT_PROGRAM = "nix-store"
#: Parameters Nix accepts on every store and storekit can ignore here (they change nothing on this side).
_IGNORED = frozenset({"priority", "trusted", "want-mass-query", "log-fd", "path-info-cache-size"})
_KNOWN = frozenset(
    {
        "store",
        "remote-store",
        "remote-program",
        "ssh-key",
        "compress",
        "max-connections",
        "base64-ssh-public-host-key",
    }
)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True, slots=True)
class SshStoreSpec:
    """One `ssh://` store: the host as ssh takes it (`user@host` or a Host of the ssh config)."""

    host: str
    store_dir: str | None = None
    """The `store` parameter; None: the caller's default (the local store's dir)."""
    remote_store: str = ""
    remote_program: str = DEFAULT_PROGRAM
    ssh_key: str = ""
    compress: bool = False
    max_connections: int = 1
    host_key: bytes = b""
    """The decoded `base64-ssh-public-host-key` (a known-hosts key line: `ssh-ed25519 AAAA…`)."""

    def __str__(self) -> str:
        params: list[tuple[str, str]] = []
        if self.store_dir is not None:
            params.append(("store", self.store_dir))
        if self.remote_store:
            params.append(("remote-store", self.remote_store))
        if self.remote_program != DEFAULT_PROGRAM:
            params.append(("remote-program", self.remote_program))
        if self.ssh_key:
            params.append(("ssh-key", self.ssh_key))
        if self.compress:
            params.append(("compress", "true"))
        if self.max_connections != 1:
            params.append(("max-connections", str(self.max_connections)))
        if self.host_key:
            params.append(("base64-ssh-public-host-key", base64.b64encode(self.host_key).decode()))
        query = urllib.parse.urlencode(params, safe="/:@,", quote_via=urllib.parse.quote)
        return SCHEME + self.host + (f"?{query}" if query else "")

    def remote_command(self) -> str:
        """What the far side's shell runs, as Nix builds it."""
        command = f"{self.remote_program} --serve --write"
        return command + (f" --store {shlex.quote(self.remote_store)}" if self.remote_store else "")


def is_ssh_uri(text: str) -> bool:
    return text.startswith(SCHEME)


def parse_ssh_uri(text: str) -> SshStoreSpec:
    """Parse `ssh://HOST?…`; an unknown parameter or a bad value is a `StoreError` naming it."""
    if not is_ssh_uri(text):
        raise StoreError(f"'{text}' is not an ssh:// store URI")
    rest, _, query = text[len(SCHEME) :].partition("?")
    host = urllib.parse.unquote(rest)
    if not host or host.startswith("-") or "/" in host or any(c.isspace() for c in host):
        raise StoreError(f"invalid SSH host name '{host}' in '{text}'")
    params: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        key, _, value = (urllib.parse.unquote(x) for x in part.partition("="))
        if key in _IGNORED:
            continue
        if key not in _KNOWN:
            known = ", ".join(sorted(_KNOWN))
            raise StoreError(f"store '{text}': unknown parameter '{key}' (an ssh:// store takes {known})")
        params[key] = value
    store_dir = params.get("store")
    if store_dir is not None and (
        not store_dir.startswith("/") or posixpath.normpath(store_dir) != store_dir
    ):
        raise StoreError(f"store '{text}': store dir '{store_dir}' is not an absolute canonical path")
    return SshStoreSpec(
        host=host,
        store_dir=store_dir,
        remote_store=params.get("remote-store", ""),
        remote_program=params.get("remote-program", DEFAULT_PROGRAM) or DEFAULT_PROGRAM,
        ssh_key=params.get("ssh-key", ""),
        compress=_bool(text, "compress", params.get("compress", "false")),
        max_connections=_count(text, params.get("max-connections", "1")),
        host_key=_host_key(text, params.get("base64-ssh-public-host-key", "")),
    )


def ssh_argv(spec: SshStoreSpec, sshopts: str, known_hosts: str | None) -> list[str]:
    """The argv that runs the serve command on the far side (`known_hosts`: the host-key file written
    for `base64-ssh-public-host-key`, None without one)."""
    command = spec.remote_command()
    if spec.host == "localhost":
        return ["bash", "-c", command]
    args = ["ssh", "-x", "-a", *sshopts.split()]
    if spec.ssh_key:
        args += ["-i", spec.ssh_key]
    if known_hosts is not None:
        args.append(f"-oUserKnownHostsFile={known_hosts}")
    if spec.compress:
        args.append("-C")
    return [*args, spec.host, command]


def known_hosts_line(spec: SshStoreSpec) -> str:
    """The line of the known-hosts file Nix writes for `base64-ssh-public-host-key`."""
    host = spec.host.rpartition("@")[2]
    return f"{host} {spec.host_key.decode('utf-8', 'replace').strip()}\n"


def _bool(text: str, key: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise StoreError(f"store '{text}': {key}={value} is not a boolean (true or false)")


def _count(text: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise StoreError(f"store '{text}': max-connections={value} is not a positive number")
    return n


def _host_key(text: str, value: str) -> bytes:
    if not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as e:
        raise StoreError(f"store '{text}': base64-ssh-public-host-key is not base64 ({e})") from e
