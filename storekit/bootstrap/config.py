"""Bootstrap profiles (`bootstrap/lfs/*.toml`): read with tomlkit, parsed purely into frozen values.

A profile declares a seed (stage 0: host tools copied into the store), then stages in build order,
then packages, each in one stage. The parse is strict, because a typo in a declaration silently
changes what gets built: an unknown key, a value of the wrong type, a dependency that does not exist
is a `ConfigError` naming the file, the key (`packages.m4.sources[0].sha256`) and what to write.

Reading is the only I/O here (`load_profile`): the TOML, the generic builder and every package script,
so that planning is a pure function of their bytes. `pin_sources` edits the TOML document in place
through tomlkit, keeping comments and layout.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import InlineTable, Whitespace
from tomlkit.toml_document import TOMLDocument

from storekit.bootstrap.model import (
    DEFAULT_HOST_PATHS,
    DEFAULT_SEARCH_PATH,
    ENV_RE,
    HEX_RE,
    ID_RE,
    RESERVED_ENV,
    SEED,
    LoadedProfile,
    Package,
    Profile,
    SeedSpec,
    Source,
    Stage,
    VerifySpec,
)
from storekit.bootstrap.rootfs import parse_rootfs
from storekit.errors import ConfigError

__all__ = [
    "DEFAULT_HOST_PATHS",
    "DEFAULT_SEARCH_PATH",
    "RESERVED_ENV",
    "SEED",
    "LoadedProfile",
    "Package",
    "Profile",
    "SeedSpec",
    "Source",
    "Stage",
    "VerifySpec",
    "load_profile",
    "parse_profile",
    "pin_sources",
    "read_document",
]

# --- the pure parse ---------------------------------------------------------------------------------


class _Table:
    """A TOML table being checked: typed getters that name the key, and a check for unknown keys."""

    def __init__(self, file: str, key: str, data: object) -> None:
        if not isinstance(data, dict):
            raise ConfigError(file, key or "(top level)", "must be a table")
        self.file, self.key, self.data = file, key, data
        self.seen: set[str] = set()

    def where(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.where(name), message)

    def get(self, name: str, kind: type, example: str, default: Any = None) -> Any:
        self.seen.add(name)
        value = self.data.get(name, default)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise self.fail(name, f"must be a {kind.__name__}, e.g. {example}")
        return value

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self.get(name, str, f'{name} = "…"', default)
        if value is None and required:
            raise self.fail(name, f'is required, e.g. {name} = "…"')
        return "" if value is None else str(value)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.get(name, list, f'{name} = ["…"]', [])
        if not all(isinstance(v, str) for v in value):
            raise self.fail(name, f'must be a list of strings, e.g. {name} = ["…"]')
        return tuple(value)

    def env(self, name: str) -> tuple[tuple[str, str], ...]:
        table = _Table(self.file, self.where(name), self.get(name, dict, f'{name} = {{ VAR = "…" }}', {}))
        out = []
        for var, value in table.data.items():
            if not ENV_RE.match(var):
                raise table.fail(var, "is not a valid environment variable name")
            if var in RESERVED_ENV:
                raise table.fail(var, "is set by the planner and cannot be overridden")
            if not isinstance(value, str):
                raise table.fail(var, f'must be a string, e.g. {var} = "…"')
            out.append((var, value))
        return tuple(out)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.fail(unknown[0], f"unknown key (known here: {', '.join(sorted(self.seen))})")


def parse_profile(text: str, file: str, read: Callable[[str], str] | None = None) -> Profile:
    """Parse and check a profile's TOML text; `file` only names it in errors.

    Cross-references (dependencies, stage inputs, patches naming sources) are checked here too, so a
    `Profile` is always consistent; graph properties (cycles) are checked by `stages.order`.
    `read(name)` gives the text of a file the profile names beside it (`[seed] from = "seed.toml"`,
    a seed shared by several profiles); without it such a reference is an error.
    """
    try:
        document = tomlkit.parse(text).unwrap()
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(file, "", f"not valid TOML: {e}") from e
    top = _Table(file, "", document)
    head = _Table(file, "profile", top.get("profile", dict, '[profile] name = "…"', {}))
    name = head.string("name", required=True)
    description = head.string("description")
    system = head.string("system", "x86_64-linux")
    builder = head.string("builder", "builder.sh")
    head.done()
    mirrors = _mirrors(_Table(file, "mirrors", top.get("mirrors", dict, "[mirrors] gnu = […]", {})))
    scan = _Table(file, "scan", top.get("scan", dict, "[scan] host_paths = […]", {}))
    host_paths = scan.strings("host_paths") if "host_paths" in scan.data else DEFAULT_HOST_PATHS
    allowed = scan.strings("allow")
    scan.done()
    seed = _seed(_shared_seed(file, top.get("seed", dict, "[seed] tools = […]", {}), read))
    stages = _stages(file, top.get("stages", list, "[[stages]] name = …", []))
    packages = _packages(file, top.get("packages", dict, "[packages.m4] …", {}), mirrors)
    verify = _verify(file, top.get("verify", dict, '[verify] stage = "…"'), stages)
    rootfs = parse_rootfs(file, top.get("rootfs", object, '[rootfs] packages = ["…"]'), stages, packages)
    top.done()
    profile = Profile(
        file, name, description, system, builder, seed, stages, packages, mirrors, host_paths, allowed,
        verify, rootfs,
    )  # fmt: skip
    _check_references(profile)
    return profile


def _mirrors(table: _Table) -> dict[str, tuple[str, ...]]:
    result = {}
    for name in list(table.data):
        urls = table.strings(name)
        if not urls:
            raise table.fail(name, "needs at least one base URL")
        result[name] = tuple(u.rstrip("/") for u in urls)
    return result


def _shared_seed(file: str, data: dict[str, Any], read: Callable[[str], str] | None) -> _Table:
    """The `[seed]` table, or the one of the file that `[seed] from = "…"` names (nothing else beside)."""
    if "from" not in data:
        return _Table(file, "seed", data)
    shared = data["from"]
    if not isinstance(shared, str) or not shared or "/" in shared:
        raise ConfigError(file, "seed.from", 'must name a file beside the profile, e.g. from = "seed.toml"')
    if len(data) > 1:
        other = sorted(k for k in data if k != "from")[0]
        raise ConfigError(file, f"seed.{other}", f"cannot be set beside seed.from (declare it in {shared})")
    if read is None:
        raise ConfigError(file, "seed.from", f"names '{shared}', which only load_profile can read")
    try:
        document = tomlkit.parse(read(shared)).unwrap()
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(shared, "", f"not valid TOML: {e}") from e
    outer = _Table(shared, "", document)
    table = outer.get("seed", dict, "[seed] tools = […]")
    if table is None:
        raise ConfigError(shared, "seed", f"has no [seed] table (named by {file}'s seed.from)")
    outer.done()
    return _Table(shared, "seed", table)


def _seed(t: _Table) -> SeedSpec:
    spec = SeedSpec(
        tools=t.strings("tools"),
        debian_packages=t.strings("debian_packages"),
        files=t.strings("files"),
        exclude=t.strings("exclude"),
        compilers=t.strings("compilers"),
        wrap=_wraps(t),
        sh=t.string("sh", "bash"),
        search_path=t.strings("search_path") or DEFAULT_SEARCH_PATH,
    )
    for i, f in enumerate(spec.files):
        if not f.startswith("/"):
            raise ConfigError(t.file, f"seed.files[{i}]", f"'{f}' must be an absolute host path")
    t.done()
    return spec


def _verify(file: str, data: object, stages: tuple[Stage, ...]) -> VerifySpec | None:
    if data is None:
        return None
    t = _Table(file, "verify", data)
    stage = t.string("stage", stages[-1].name)
    if all(s.name != stage for s in stages):
        raise t.fail("stage", f"'{stage}' is not a declared stage")
    spec = VerifySpec(stage, t.string("script", required=True))
    t.done()
    return spec


def _wraps(t: _Table) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    table = _Table(t.file, "seed.wrap", t.get("wrap", dict, 'wrap = { perl = { PERL5LIB = "…" } }', {}))
    result = []
    for command in list(table.data):
        env = table.get(command, dict, f'{command} = {{ VAR = "…" }}')
        inner = _Table(t.file, f"seed.wrap.{command}", env)
        pairs = []
        for var, value in env.items():
            if not ENV_RE.match(var) or not isinstance(value, str):
                raise inner.fail(var, 'must be VAR = "value"')
            pairs.append((var, value))
        result.append((command, tuple(pairs)))
    return tuple(result)


def _stages(file: str, items: list[Any]) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    for i, item in enumerate(items):
        t = _Table(file, f"stages[{i}]", item)
        name = t.string("name", required=True)
        if not ID_RE.match(name) or name == SEED:
            raise t.fail("name", f"'{name}' is not a valid stage name (lowercase, digits, '-', not 'seed')")
        if any(s.name == name for s in stages):
            raise t.fail("name", f"stage '{name}' is declared twice")
        stage = Stage(
            name=name,
            description=t.string("description"),
            inputs=t.strings("inputs"),
            env=t.env("env"),
            sandbox_paths=t.strings("sandbox_paths"),
            check=bool(t.get("check", bool, "check = true", False)),
            dep_flags=bool(t.get("dep_flags", bool, "dep_flags = true", False)),
        )
        t.get("chapter", int, "chapter = 5")
        earlier = {SEED, *(s.name for s in stages)}
        for j, s in enumerate(stage.inputs):
            if s not in earlier:
                raise ConfigError(file, f"stages[{i}].inputs[{j}]", f"'{s}' is not an earlier stage")
        _check_sandbox_paths(file, f"stages[{i}].sandbox_paths", stage.sandbox_paths)
        t.done()
        stages.append(stage)
    if not stages:
        raise ConfigError(file, "stages", "declares no stages: add [[stages]] tables")
    return tuple(stages)


def _check_sandbox_paths(file: str, key: str, paths: tuple[str, ...]) -> None:
    for j, p in enumerate(paths):
        if not p.startswith("/") or "=" not in p:
            raise ConfigError(file, f"{key}[{j}]", "must be '/TARGET=SOURCE'")


def _packages(file: str, table: dict[str, Any], mirrors: Mapping[str, tuple[str, ...]]) -> dict[str, Package]:
    packages = {}
    for pid, data in table.items():
        key = f"packages.{pid}"
        if not ID_RE.match(pid):
            raise ConfigError(file, key, "a package id is lowercase letters, digits, '+', '.', '_', '-'")
        if pid in (SEED, "verify"):
            raise ConfigError(file, key, f"'{pid}' is reserved (the seed and the sanity checks)")
        t = _Table(file, key, data)
        name = t.string("name", pid)
        version = t.string("version", required=True)
        raw_sources = t.get("sources", list, "sources = [{ url = …, sha256 = … }]", [])
        sources = tuple(_source(file, f"{key}.sources[{i}]", s, mirrors) for i, s in enumerate(raw_sources))
        packages[pid] = Package(
            id=pid,
            name=name,
            version=version,
            stage=t.string("stage", required=True),
            script=t.string("script", f"packages/{name}.sh"),
            deps=t.strings("deps"),
            sources=sources,
            patches=t.strings("patches"),
            allowed_test_failures=t.strings("allowed_test_failures"),
            env=t.env("env"),
            check=t.get("check", bool, "check = true"),
            allowed_host_paths=t.strings("allow_host_paths"),
            sandbox_paths=t.strings("sandbox_paths"),
            optional=bool(t.get("optional", bool, "optional = true", False)),
        )
        _check_sandbox_paths(file, f"{key}.sandbox_paths", packages[pid].sandbox_paths)
        t.done()
    return packages


def _source(file: str, key: str, data: object, mirrors: Mapping[str, tuple[str, ...]]) -> Source:
    t = _Table(file, key, data)
    urls = list(t.strings("urls"))
    single = t.string("url")
    if single:
        urls.insert(0, single)
    if not urls:
        raise t.fail("url", 'is required: url = "https://…" (or urls = […])')
    expanded = tuple(u for url in urls for u in _expand(t, url, mirrors))
    name = t.string("file", posixpath.basename(urls[0].split("?")[0]))
    if not name or "/" in name or name.startswith("."):
        raise t.fail("file", f"'{name}' is not a usable file name; set file = \"…\"")
    digests = {}
    for algo in ("sha256", "md5"):
        value = t.string(algo) or None
        if value is not None and not HEX_RE[algo].match(value):
            raise t.fail(algo, f"'{value}' is not a lowercase hex {algo} digest")
        digests[algo] = value
    debian = t.string("debian") or None
    if debian is not None and not re.match(r"^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+~:-]+)?$", debian):
        raise t.fail("debian", f"'{debian}' is not a Debian source package 'name' or 'name=version'")
    t.done()
    return Source(name, expanded, digests["sha256"], digests["md5"], debian, key)


def _expand(t: _Table, url: str, mirrors: Mapping[str, tuple[str, ...]]) -> list[str]:
    """`mirror://gnu/m4/…` becomes one URL per base URL of `[mirrors] gnu`, as in nixpkgs' fetchurl."""
    if not url.startswith("mirror://"):
        if not re.match(r"^(https?|ftp)://", url):
            raise t.fail("url", f"'{url}' is not an http(s):// ftp:// or mirror:// URL")
        return [url]
    mirror, _, rest = url.removeprefix("mirror://").partition("/")
    if mirror not in mirrors:
        raise t.fail("url", f"'{url}' names mirror '{mirror}', which [mirrors] does not declare")
    return [f"{base}/{rest}" for base in mirrors[mirror]]


def _check_references(p: Profile) -> None:
    stage_names = {s.name for s in p.stages}
    for pkg in p.packages.values():
        key = f"packages.{pkg.id}"
        if pkg.stage not in stage_names:
            raise ConfigError(p.file, f"{key}.stage", f"'{pkg.stage}' is not a declared stage")
        for i, dep in enumerate(pkg.deps):
            other = p.packages.get(dep)
            if other is None:
                raise ConfigError(p.file, f"{key}.deps[{i}]", f"'{dep}' is not a declared package")
            if other.stage != pkg.stage:
                raise ConfigError(
                    p.file,
                    f"{key}.deps[{i}]",
                    f"'{dep}' is in stage '{other.stage}', not '{pkg.stage}': a package sees earlier "
                    "stages through its stage's inputs, and declares dependencies only within its stage",
                )
            if other.optional and not pkg.optional:
                raise ConfigError(
                    p.file,
                    f"{key}.deps[{i}]",
                    f"'{dep}' is optional (built only when asked for): a package built by default "
                    "cannot depend on it",
                )
        files = {s.file for s in pkg.sources}
        if len(files) != len(pkg.sources):
            raise ConfigError(p.file, f"{key}.sources", "two sources have the same file name")
        for i, patch in enumerate(pkg.patches):
            if re.sub(r"#p[0-9]$", "", patch).partition(":")[0] not in files:
                raise ConfigError(
                    p.file,
                    f"{key}.patches[{i}]",
                    f"'{patch}' names no source of this package "
                    "(give a source file name, or SOURCE:PATH for a file inside a source archive; "
                    "#p2 sets the strip level)",
                )
    for stage in p.stages:
        if all(pkg.optional for pkg in p.stage_packages(stage.name)):
            raise ConfigError(
                p.file, f"stages.{stage.name}", "has no packages (an optional one does not count)"
            )
    for tree in p.rootfs:
        for i, pid in enumerate(tree.packages):
            if pid in p.packages and p.packages[pid].optional:
                raise ConfigError(
                    p.file,
                    f"rootfs.packages[{i}]",
                    f"'{pid}' is optional (built only when asked for): no tree holds it",
                )


# --- reading and pinning (I/O) ----------------------------------------------------------------------


def load_profile(path: str) -> LoadedProfile:
    """Read a profile and the builder and scripts it names; a missing script is a `ConfigError`."""
    text = _read(path, path, "").decode("utf-8", "replace")
    directory = os.path.dirname(os.path.abspath(path))

    def beside(name: str) -> str:
        return _read(os.path.join(directory, name), path, "seed.from").decode("utf-8", "replace")

    profile = parse_profile(text, path, beside)
    files: dict[str, bytes] = {
        profile.builder: _read(os.path.join(directory, profile.builder), path, "profile.builder")
    }
    for pkg in profile.packages.values():
        files[pkg.script] = _read(os.path.join(directory, pkg.script), path, f"packages.{pkg.id}.script")
    if profile.verify is not None:
        script = profile.verify.script
        files[script] = _read(os.path.join(directory, script), path, "verify.script")
    for tree in profile.rootfs:
        named = (("rootfs.script", tree.script), ("rootfs.check", tree.check or ""))
        for key, name in named:
            if name:
                files[name] = _read(os.path.join(directory, name), path, key)
    return LoadedProfile(profile, files, directory)


def _read(file: str, profile: str, key: str) -> bytes:
    try:
        with open(file, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(profile, key, f"cannot read '{file}': {e.strerror or e}") from e


def read_document(path: str) -> TOMLDocument:
    """The profile as an editable tomlkit document (comments and layout kept)."""
    text = _read(path, path, "").decode("utf-8")
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(path, "", f"not valid TOML: {e}") from e


def pin_sources(
    document: TOMLDocument, sha256_of: Callable[[str, int, Source], str | None], profile: Profile
) -> list[str]:
    """Set `sha256` of every source for which `sha256_of(package id, index, source)` gives one.

    Returns the keys changed. The document keeps its comments and layout; a new `sha256` goes at the
    end of its inline table.
    """
    changed = []
    for pkg in profile.packages.values():
        for i, source in enumerate(pkg.sources):
            digest = sha256_of(pkg.id, i, source)
            if digest is None or digest == source.sha256:
                continue
            table = document["packages"][pkg.id]["sources"][i]
            new = "sha256" not in table
            table["sha256"] = digest
            if new and isinstance(table, InlineTable):
                table.value.body.append((None, Whitespace(" ")))  # keep `{ … }` spaced as it was
            changed.append(source.key)
    return changed
