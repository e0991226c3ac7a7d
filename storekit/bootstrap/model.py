"""What a bootstrap profile says, as frozen values: sources, packages, stages, the seed, the profile.

`config.py` reads and checks the TOML into these; everything after it (stages, plan, driver) works
on them only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

ID_RE = re.compile(r"^[a-z0-9][a-z0-9+._-]*$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEX_RE = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "md5": re.compile(r"^[0-9a-f]{32}$")}
SEED = "seed"
#: Variables the planner sets itself; a profile may not override them.
RESERVED_ENV = frozenset(
    {
        "name",
        "pname",
        "version",
        "builder",
        "system",
        "out",
        "src",
        "srcs",
        "patches",
        "script",
        "inputs",
        "stage",
        "doCheck",
        "allowedTestFailures",
        "hostPaths",
        "hostPathsAllowed",
        "sandboxPaths",
        "seed",
        "PATH",
        "HOME",
        "TMPDIR",
        "NIX_BUILD_TOP",
        "NIX_STORE",
        "NIX_BUILD_CORES",
    }
)
DEFAULT_SEARCH_PATH = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")
DEFAULT_HOST_PATHS = ("/usr/lib/x86_64-linux-gnu", "/usr/bin/", "/tools/")


@dataclass(frozen=True, slots=True)
class Source:
    """One file a package is built from: fetched from `urls` (mirrors expanded), checked by sha256."""

    file: str
    urls: tuple[str, ...]
    sha256: str | None
    md5: str | None = None
    debian: str | None = None
    """Debian source package `name=version` whose `.orig` (or other) file this is, for `--from-debian`."""
    key: str = ""
    """Where it was declared (`packages.m4.sources[0]`), for error messages."""


@dataclass(frozen=True, slots=True)
class Package:
    id: str
    name: str
    version: str
    stage: str
    script: str
    """Path of the build script, relative to the profile's directory."""
    deps: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    patches: tuple[str, ...] = ()
    allowed_test_failures: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    check: bool | None = None
    allowed_host_paths: tuple[str, ...] = ()
    sandbox_paths: tuple[str, ...] = ()
    """Added to its stage's (`Stage.sandbox_paths`) for this package only: a test suite that runs
    programs at the book's FHS paths (glibc's: `/bin/cat`, `/bin/pwd`, `#!/bin/bash`) sees them
    there, and no other build of the stage does."""
    optional: bool = False
    """Built only when named (`build --until ID`), never by a plain `build`: a test suite that takes
    hours (gcc's). Nothing may depend on it, and a later stage does not see it."""


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    description: str = ""
    inputs: tuple[str, ...] = ()
    """Earlier stages visible besides the previous one (`seed` names stage 0)."""
    env: tuple[tuple[str, str], ...] = ()
    sandbox_paths: tuple[str, ...] = ()
    check: bool = False
    dep_flags: bool = False
    """Pass the compilers (`NIX_CFLAGS_COMPILE`, `NIX_LDFLAGS`, read by `wrap_cc`'s wrappers) the
    include and lib directories of a package's own-stage `deps` (the ones it names: they are what its
    build mounts) and of nothing else.
    Chapter 8 needs this: it must link against chapter 8's libraries only, never against the
    temporary system's, whose tools it still runs (the book overwrites them in /usr; the store
    keeps both, so what links where has to be said)."""


@dataclass(frozen=True, slots=True)
class SeedSpec:
    """The host tools stage 0 copies: commands found on `search_path`, Debian packages' files, globs."""

    tools: tuple[str, ...] = ()
    debian_packages: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    compilers: tuple[str, ...] = ()
    """Commands wrapped so they compile and link against the seed's own libc, not the host's."""
    wrap: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    """Commands run with variables set (relative paths are in the seed): Debian's perl finds its
    modules only in /usr, so `perl = { PERL5LIB = "usr/share/perl/5.36:…" }`."""
    sh: str = "bash"
    search_path: tuple[str, ...] = DEFAULT_SEARCH_PATH


@dataclass(frozen=True, slots=True)
class VerifySpec:
    """The book's sanity checks: a script run like a package of `stage`, after all of that stage."""

    stage: str
    script: str


@dataclass(frozen=True, slots=True)
class RootfsSpec:
    """The system as one result: packages composed into an FHS tree, plus files such as /etc/passwd.

    Built like a package of `stage`, after all of it, by `script` (beside the profile); `packages`
    are composed in order (the first to provide a path wins). `modes` records what a store path
    cannot hold (owners, setuid bits) as `(package, path in it, mode)`; the export applies them.
    `name` is the tree's id (`--until NAME`, `enter --rootfs NAME`): a profile may compose several,
    such as the book's chroot at the end of chapter 7 and the finished system after chapter 8.
    """

    name: str
    stage: str
    script: str
    packages: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()
    """(path in the tree, text), e.g. ("etc/passwd", "root:x:0:0:…")."""
    modes: tuple[tuple[str, str, str], ...] = ()
    check: str | None = None
    """A script run inside the system (`bootstrap enter`) by `bootstrap verify`."""


@dataclass(frozen=True, slots=True)
class Profile:
    file: str
    name: str
    description: str
    system: str
    builder: str
    seed: SeedSpec
    stages: tuple[Stage, ...]
    packages: Mapping[str, Package]
    """In declaration order."""
    mirrors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    host_paths: tuple[str, ...] = DEFAULT_HOST_PATHS
    allowed_host_paths: tuple[str, ...] = ()
    verify: VerifySpec | None = None
    rootfs: tuple[RootfsSpec, ...] = ()
    """The systems composed from the packages (`[rootfs]` or `[[rootfs]]`), in declaration order."""

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def stage_packages(self, name: str) -> list[Package]:
        return [p for p in self.packages.values() if p.stage == name]


@dataclass(frozen=True, slots=True)
class LoadedProfile:
    """A profile with the bytes of the files it names (builder and scripts), keyed by relative path."""

    profile: Profile
    files: Mapping[str, bytes]
    directory: str
