"""The values Nix's protocols carry, as typed, immutable Python values (no bytes here).

Names follow Nix (`DrvOutput`, `Realisation`, `BuildResult`, `DerivedPath`, `ValidPathInfo`), so the
protocol code reads like Nix's `Serialise<T>` specialisations. Store paths are `StorePath`s; content
addresses and signatures stay in their printed form (`fixed:r:sha256:…`, `name:base64`), which is
what travels and what the store layer parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from storekit.hashing import Hash
from storekit.realisation import Realisation
from storekit.storepath import StorePath


class BuildStatus(IntEnum):
    """Nix's `BuildResult::Status`, with the numbers that travel."""

    Built = 0
    Substituted = 1
    AlreadyValid = 2
    PermanentFailure = 3
    InputRejected = 4
    OutputRejected = 5
    TransientFailure = 6
    CachedFailure = 7
    TimedOut = 8
    MiscFailure = 9
    DependencyFailed = 10
    LogLimitExceeded = 11
    NotDeterministic = 12
    ResolvesToAlreadyValid = 13
    NoSubstituters = 14
    HashMismatch = 15

    @property
    def success(self) -> bool:
        return self in (self.Built, self.Substituted, self.AlreadyValid, self.ResolvesToAlreadyValid)


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What building (or substituting) one derivation gave. `cpu_*` are microseconds, when known."""

    status: BuildStatus
    error_msg: str = ""
    times_built: int = 0
    is_non_deterministic: bool = False
    start_time: int = 0
    stop_time: int = 0
    cpu_user: int | None = None
    cpu_system: int | None = None
    built_outputs: Mapping[str, Realisation] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DerivedPath:
    """A store path (`outputs` None: opaque) or outputs of a derivation (`("*",)` means all of them)."""

    path: StorePath
    outputs: tuple[str, ...] | None = None

    def render(self) -> str:
        if self.outputs is None:
            return str(self.path)
        return f"{self.path}!{','.join(self.outputs)}"


@dataclass(frozen=True, slots=True)
class KeyedBuildResult:
    path: DerivedPath
    result: BuildResult


@dataclass(frozen=True, slots=True)
class PathInfo:
    """A store object's metadata as the protocols send it: Nix's `UnkeyedValidPathInfo` (+ `path`).

    The serve protocol before 2.4 sends no hash (`nar_hash` None) and a `download_size`.
    """

    nar_hash: Hash | None
    nar_size: int
    references: tuple[StorePath, ...] = ()
    deriver: StorePath | None = None
    registration_time: int = 0
    ultimate: bool = False
    sigs: tuple[str, ...] = ()
    ca: str | None = None
    path: StorePath | None = None
    download_size: int | None = None


class BuildMode(IntEnum):
    Normal = 0
    Repair = 1
    Check = 2


class TrustedFlag(IntEnum):
    """The daemon's answer to "do you trust me?" (0 on the wire means it does not say)."""

    Trusted = 1
    NotTrusted = 2


@dataclass(frozen=True, slots=True)
class ClientHandshakeInfo:
    """What a daemon tells its client after the version handshake (worker protocol >= 1.33)."""

    daemon_nix_version: str | None = None
    remote_trusts_us: TrustedFlag | None = None


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """The serve protocol's `BuildOptions` (sent with `BuildDerivation`)."""

    max_silent_time: int
    build_timeout: int
    max_log_size: int = 0
    nr_repeats: int = 0
    enforce_determinism: bool = False
    keep_failed: bool = False
