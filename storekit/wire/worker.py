"""The worker protocol (the Nix daemon's), version by version and, from 1.38, feature by feature.

A `WorkerVersion` is the minor number both sides agreed on (major is always 1) plus, since 1.38,
the set of named features both sides offered. What changed, per value:

- `BuildResult`: 1.28 adds builtOutputs (DrvOutput, realisation JSON); 1.29 timesBuilt,
  isNonDeterministic, startTime, stopTime; 1.37 cpuUser and cpuSystem (optional microseconds); the
  feature `realisation-with-path-not-hash` keys builtOutputs by output name (out path, signatures).
- `UnkeyedValidPathInfo`: deriver, NAR hash (base16, no prefix), references, registration time, NAR
  size; 1.16 adds ultimate, signatures, content address.
- `DerivedPath`: `path` or `drv!out1,out2`; 1.30 allows `drv!*`.
- `ClientHandshakeInfo`: 1.33 the daemon's Nix version; 1.35 whether it trusts the client.
- `DrvOutput`/`Realisation`: by `.drv` path and as a struct with `realisation-with-path-not-hash`,
  as JSON before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from storekit.errors import InvalidStorePath, WireFormatError
from storekit.hashing import Hash
from storekit.realisation import DrvOutput, Realisation
from storekit.storepath import StoreDir
from storekit.wire.common import (
    read_drv_output,
    read_keyed_drv_output,
    read_legacy_built_outputs,
    read_optional_ca,
    read_optional_store_path,
    read_realisation_json,
    read_store_path,
    read_store_paths,
    read_unkeyed_realisation,
    write_drv_output,
    write_keyed_drv_output,
    write_legacy_built_outputs,
    write_optional_ca,
    write_optional_store_path,
    write_realisation_json,
    write_store_paths,
    write_unkeyed_realisation,
)
from storekit.wire.framing import WireReader, WireWriter
from storekit.wire.values import (
    BuildMode,
    BuildResult,
    BuildStatus,
    ClientHandshakeInfo,
    DerivedPath,
    KeyedBuildResult,
    PathInfo,
    TrustedFlag,
)

WORKER_MAGIC_1 = 0x6E697863
WORKER_MAGIC_2 = 0x6478696F
REALISATION_WITH_PATH = "realisation-with-path-not-hash"


@dataclass(frozen=True, slots=True)
class WorkerVersion:
    """The agreed protocol: minor version (`1.minor`) and, from 1.38, the agreed feature names."""

    minor: int
    features: frozenset[str] = frozenset()

    @property
    def by_path(self) -> bool:
        return REALISATION_WITH_PATH in self.features


def read_handshake(r: WireReader) -> int:
    """The daemon's answer: magic 2 and its protocol version (`0x100 | minor`)."""
    at = r.offset
    magic = r.u64()
    if magic != WORKER_MAGIC_2:
        expected = f"{WORKER_MAGIC_2:#x}"
        raise WireFormatError(f"protocol mismatch: expected worker magic {expected}, got {magic:#x}", at)
    return r.u64()


def write_handshake(w: WireWriter, version: int) -> None:
    w.u64(WORKER_MAGIC_2).u64(version)


def _status(r: WireReader) -> BuildStatus:
    at = r.offset
    raw = r.u64()
    try:
        return BuildStatus(raw)
    except ValueError:
        raise WireFormatError(f"unknown build status {raw}", at) from None


def _optional_u64(r: WireReader) -> int | None:
    return r.u64() if r.bool() else None


def _write_optional_u64(w: WireWriter, value: int | None) -> None:
    w.bool(value is not None)
    if value is not None:
        w.u64(value)


def read_build_result(r: WireReader, sd: StoreDir, v: WorkerVersion) -> BuildResult:
    status, error_msg = _status(r), r.string()
    times, nondet, start, stop = (r.u64(), r.bool(), r.u64(), r.u64()) if v.minor >= 29 else (0, False, 0, 0)
    cpu_user, cpu_system = (_optional_u64(r), _optional_u64(r)) if v.minor >= 37 else (None, None)
    outputs: dict[str, Realisation] = {}
    if v.minor >= 28:
        if v.by_path:
            outputs = {r.string(): read_unkeyed_realisation(r, sd) for _ in range(r.count())}
        else:
            outputs = read_legacy_built_outputs(r, sd)
    return BuildResult(status, error_msg, times, nondet, start, stop, cpu_user, cpu_system, outputs)


def write_build_result(w: WireWriter, value: BuildResult, v: WorkerVersion) -> None:
    w.u64(value.status).string(value.error_msg)
    if v.minor >= 29:
        w.u64(value.times_built).bool(value.is_non_deterministic).u64(value.start_time).u64(value.stop_time)
    if v.minor >= 37:
        _write_optional_u64(w, value.cpu_user)
        _write_optional_u64(w, value.cpu_system)
    if v.minor >= 28:
        if v.by_path:
            w.u64(len(value.built_outputs))
            for name, realisation in sorted(value.built_outputs.items()):
                w.string(name)
                write_unkeyed_realisation(w, realisation)
        else:
            write_legacy_built_outputs(w, dict(value.built_outputs))


def read_derived_path(r: WireReader, sd: StoreDir, v: WorkerVersion) -> DerivedPath:
    at = r.offset
    text = r.string()
    path_text, sep, outputs = text.partition("!")
    try:
        path = sd.parse_path(path_text)
    except InvalidStorePath as e:
        raise WireFormatError(str(e), at) from e
    if not sep:
        # before 1.30 a bare .drv path meant "all its outputs"
        return DerivedPath(path, ("*",) if v.minor < 30 and path.is_derivation else None)
    names = tuple(outputs.split(","))
    if names == ("*",) and v.minor < 30:
        raise WireFormatError("'!*' (all outputs) needs worker protocol 1.30; before, a bare .drv path", at)
    return DerivedPath(path, names)


def write_derived_path(w: WireWriter, value: DerivedPath, v: WorkerVersion) -> None:
    if v.minor < 30:
        if value.outputs == ("*",):
            w.string(str(value.path))
            return
        if value.outputs is None and value.path.is_derivation:
            raise ValueError(
                "worker protocol before 1.30 cannot send a .drv path itself (it means its outputs)"
            )
    w.string(value.render())


def read_keyed_build_result(r: WireReader, sd: StoreDir, v: WorkerVersion) -> KeyedBuildResult:
    return KeyedBuildResult(read_derived_path(r, sd, v), read_build_result(r, sd, v))


def write_keyed_build_result(w: WireWriter, value: KeyedBuildResult, v: WorkerVersion) -> None:
    write_derived_path(w, value.path, v)
    write_build_result(w, value.result, v)


def read_unkeyed_path_info(r: WireReader, sd: StoreDir, v: WorkerVersion) -> PathInfo:
    deriver = read_optional_store_path(r, sd)
    at = r.offset
    text = r.string()
    try:
        nar_hash = Hash.parse(text, "sha256")
    except ValueError as e:
        raise WireFormatError(str(e), at) from e
    references = read_store_paths(r, sd)
    registration_time, nar_size = r.u64(), r.u64()
    if v.minor < 16:
        return PathInfo(nar_hash, nar_size, references, deriver, registration_time)
    ultimate, sigs, ca = r.bool(), tuple(r.strings()), read_optional_ca(r)
    return PathInfo(nar_hash, nar_size, references, deriver, registration_time, ultimate, sigs, ca)


def write_unkeyed_path_info(w: WireWriter, value: PathInfo, v: WorkerVersion) -> None:
    if value.nar_hash is None:
        raise ValueError("the worker protocol sends the NAR hash; this path info has none")
    write_optional_store_path(w, value.deriver)
    w.string(value.nar_hash.base16)
    write_store_paths(w, value.references)
    w.u64(value.registration_time).u64(value.nar_size)
    if v.minor >= 16:
        w.bool(value.ultimate).strings(value.sigs)
        write_optional_ca(w, value.ca)


def read_path_info(r: WireReader, sd: StoreDir, v: WorkerVersion) -> PathInfo:
    path = read_store_path(r, sd)
    info = read_unkeyed_path_info(r, sd, v)
    return dataclasses.replace(info, path=path)


def write_path_info(w: WireWriter, value: PathInfo, v: WorkerVersion) -> None:
    if value.path is None:
        raise ValueError("a ValidPathInfo needs its path")
    w.string(str(value.path))
    write_unkeyed_path_info(w, value, v)


def read_build_mode(r: WireReader) -> BuildMode:
    at = r.offset
    raw = r.u64()
    try:
        return BuildMode(raw)
    except ValueError:
        raise WireFormatError(f"unknown build mode {raw}", at) from None


def read_trusted_flag(r: WireReader) -> TrustedFlag | None:
    at = r.offset
    raw = r.u64()
    if raw == 0:
        return None
    try:
        return TrustedFlag(raw)
    except ValueError:
        raise WireFormatError(f"invalid trusted flag {raw}", at) from None


def write_trusted_flag(w: WireWriter, value: TrustedFlag | None) -> None:
    w.u64(0 if value is None else value)


def read_client_handshake_info(r: WireReader, v: WorkerVersion) -> ClientHandshakeInfo:
    version = r.string() if v.minor >= 33 else None
    trusted = read_trusted_flag(r) if v.minor >= 35 else None
    return ClientHandshakeInfo(version, trusted)


def write_client_handshake_info(w: WireWriter, value: ClientHandshakeInfo, v: WorkerVersion) -> None:
    if v.minor >= 33:
        w.string(value.daemon_nix_version or "")
    if v.minor >= 35:
        write_trusted_flag(w, value.remote_trusts_us)


def read_worker_drv_output(r: WireReader, sd: StoreDir, v: WorkerVersion) -> DrvOutput:
    return read_keyed_drv_output(r, sd) if v.by_path else read_drv_output(r)


def write_worker_drv_output(w: WireWriter, value: DrvOutput, v: WorkerVersion) -> None:
    if v.by_path:
        write_keyed_drv_output(w, value)
    else:
        write_drv_output(w, value)


def read_realisation(r: WireReader, sd: StoreDir, v: WorkerVersion) -> Realisation:
    if not v.by_path:
        return read_realisation_json(r, sd)
    key = read_keyed_drv_output(r, sd)
    value = read_unkeyed_realisation(r, sd)
    return Realisation(value.out_path, value.signatures, id=key, json_keys=value.json_keys)


def write_realisation(w: WireWriter, value: Realisation, v: WorkerVersion) -> None:
    if not v.by_path:
        write_realisation_json(w, value)
        return
    if value.id is None:
        raise ValueError("a realisation without its DrvOutput cannot be sent keyed")
    write_keyed_drv_output(w, value.id)
    write_unkeyed_realisation(w, value)
