"""The system as one result: the `[rootfs]` table, and the derivation that composes it.

A profile's packages each live in their own store path; a system to boot, enter or export is one FHS
tree (`/usr/bin`, `/usr/lib`, `/etc` …) whose entries are links into those paths, plus the files the
book's chapter 9 writes to `/etc`. The tree is a derivation like a package of the last stage (built
by a script beside the profile, `rootfs.sh`), so it is planned, built, checked and garbage-collected
like everything else; its inputs are exactly the packages it lists, not the whole stage, and it is
built with the seed's tools (it links and writes text: the finished system's tree must not wait for,
or name, a shell of the stage before).

What a store path cannot hold (an owner other than the builder, setuid and setgid bits, a sticky
`/tmp`) is declared in `[rootfs.modes]` and written by the script to `nix-support/ownership` in the
tree's output, one `MODE UID GID PATH` line each; the NARs stay as they are, and `export` applies
the manifest to the tarball (NixLFS needs a script run as root after the fact for this).

A profile composes one tree (`[rootfs]`, whose id is `rootfs`) or several (`[[rootfs]]`, each with
its `name`): the LFS profile has the book's chroot at the end of chapter 7, entered while chapter 8
builds, and the finished system. Each is planned, built and checked on its own; `enter` and
`export` take the last declared unless told `--rootfs NAME`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from storekit.bootstrap.model import SEED, Package, RootfsSpec, Stage
from storekit.errors import ConfigError

ROOTFS = "rootfs"
OWNERSHIP = "nix-support/ownership"
_MODE_RE = re.compile(r"^[0-7]{3,4}( [0-9]+:[0-9]+)?$")
_KNOWN = {"name", "stage", "script", "packages", "files", "files_from", "modes", "check"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*$")


def parse_rootfs(
    file: str, data: object, stages: tuple[Stage, ...], packages: Mapping[str, Package]
) -> tuple[RootfsSpec, ...]:
    """Check `[rootfs]` (one tree, id `rootfs`) or `[[rootfs]]` (each with a distinct `name`).

    A name is an id beside the packages and stages (`--until NAME`), so it may be neither.
    """
    if data is None:
        return ()
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not items or not all(isinstance(d, dict) for d in items):
        raise ConfigError(file, "rootfs", 'must be a table ([rootfs]) or tables ([[rootfs]] name = "…")')
    found: list[RootfsSpec] = []
    for i, item in enumerate(items):
        where = "rootfs.name" if isinstance(data, dict) else f"rootfs[{i}].name"
        name = item.get("name", ROOTFS if isinstance(data, dict) else None)
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigError(file, where, 'each [[rootfs]] needs a name, e.g. name = "system"')
        if name in packages or name == SEED or any(s.name == name for s in stages):
            raise ConfigError(file, where, f"'{name}' is already a package or stage name")
        if any(s.name == name for s in found):
            raise ConfigError(file, where, f"'{name}' names two [[rootfs]] trees")
        found.append(_parse_one(file, item, name, stages, packages, found))
    return tuple(found)


def _parse_one(
    file: str,
    data: dict[str, Any],
    name: str,
    stages: tuple[Stage, ...],
    packages: Mapping[str, Package],
    earlier: list[RootfsSpec],
) -> RootfsSpec:
    """One tree. `files_from` names an earlier tree whose files this one starts from (its own
    `files` replace those of the same path): the finished system keeps the chroot's /etc/passwd,
    as the book's disk does, without the profile saying it twice."""
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise ConfigError(
            file, f"rootfs.{unknown[0]}", f"unknown key (known here: {', '.join(sorted(_KNOWN))})"
        )
    stage = _string(file, data, "stage", stages[-1].name)
    if all(s.name != stage for s in stages):
        raise ConfigError(file, "rootfs.stage", f"'{stage}' is not a declared stage")
    names = data.get("packages", [])
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(
            file, "rootfs.packages", 'must list the packages to compose, e.g. packages = ["bash"]'
        )
    for i, pkg in enumerate(names):
        if pkg != SEED and pkg not in packages:
            raise ConfigError(file, f"rootfs.packages[{i}]", f"'{pkg}' is not a declared package")
    base = _string(file, data, "files_from", "")
    if base and all(tree.name != base for tree in earlier):
        raise ConfigError(file, "rootfs.files_from", f"'{base}' is not a [[rootfs]] declared before this one")
    own = _table(file, data, "files")
    files = [f for tree in earlier if tree.name == base for f in tree.files if f[0] not in own]
    for path, text in own.items():
        _relative(file, f"rootfs.files.{path}", path)
        if not isinstance(text, str):
            raise ConfigError(
                file, f"rootfs.files.{path}", 'must be the file\'s text, e.g. """root:x:0:0…"""'
            )
        files.append((path, text))
    modes = []
    for key, mode in _table(file, data, "modes").items():
        where = f'rootfs.modes."{key}"'
        package, sep, path = key.partition(":")
        if not sep or (package not in names and package != ROOTFS):
            raise ConfigError(
                file, where, "must be 'PACKAGE:PATH' for a package of rootfs.packages (or rootfs:PATH)"
            )
        _relative(file, where, path)
        if not isinstance(mode, str) or not _MODE_RE.match(mode):
            raise ConfigError(
                file, where, 'must be an octal mode, optionally with owners: "4755" or "0700 0:0"'
            )
        modes.append((package, path, mode))
    check = _string(file, data, "check", "") or None
    script = _string(file, data, "script", "rootfs.sh")
    return RootfsSpec(name, stage, script, tuple(names), tuple(files), tuple(modes), check)


def _string(file: str, data: dict[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(file, f"rootfs.{key}", f'must be a string, e.g. {key} = "…"')
    return value


def _table(file: str, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(file, f"rootfs.{key}", f"must be a table: [rootfs.{key}]")
    return value


def _relative(file: str, key: str, path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(file, key, f"'{path}' must be a relative path inside the tree (etc/passwd)")


def rootfs_package(spec: RootfsSpec, profile_name: str) -> Package:
    """The tree as a package of its stage (its inputs are `spec.packages`, see `plan.make_plan`).

    Its store path is NAME-PROFILE (`rootfs-lfs-debian`).
    """
    deps = tuple(p for p in spec.packages if p != SEED)
    # /etc is the system's own configuration: its PATH=/usr/bin and the like are the point
    return Package(
        spec.name, spec.name, profile_name, spec.stage, spec.script, deps, allowed_host_paths=("etc/*",)
    )


def rootfs_env(spec: RootfsSpec, file_paths: Mapping[str, str]) -> dict[str, str]:
    """What the script reads: the packages in order, the files (`PATH=TEXT-STORE-PATH`), the modes."""
    return {
        "rootfsPackages": " ".join(f"@{p}@" for p in spec.packages),
        "rootfsFiles": " ".join(f"{path}={file_paths[path]}" for path, _ in spec.files),
        "rootfsModes": "\n".join(_mode_line(pkg, path, mode) for pkg, path, mode in spec.modes),
    }


def _mode_line(pkg: str, path: str, mode: str) -> str:
    """`MODE UID GID PATH`: PATH in a package's store path, or relative (in the tree itself)."""
    bits, _, owners = mode.partition(" ")
    uid, _, gid = (owners or "0:0").partition(":")
    where = path if pkg == ROOTFS else f"@{pkg}@/{path}"
    return f"{bits} {uid} {gid} {where}"
