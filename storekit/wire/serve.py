"""The serve protocol (`nix-store --serve`, ssh:// stores, the build hook), version by version.

A version is `0x200 | minor`: Nix 2.8 speaks 2.7, current Nix 2.8 (the protocol's, not Nix's). What
changed, per value:

- `BuildResult`: 2.3 adds timesBuilt, isNonDeterministic, startTime, stopTime; 2.6 adds builtOutputs
  as (DrvOutput, realisation JSON) pairs; 2.8 keys them by output name with an out path and
  signatures.
- `UnkeyedValidPathInfo`: deriver, references, download size, NAR size; 2.4 adds the NAR hash
  (`sha256:<nix32>`), the content address and the signatures.
- `BuildOptions`: max silent time, build timeout; 2.2 max log size; 2.3 repeats and enforced
  determinism; 2.7 keep-failed.
- `Realisation` and `DrvOutput` at 2.8: by `.drv` path and output name, not JSON.
"""

from __future__ import annotations

from enum import IntEnum

from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import WireFormatError
from storekit.hashing import Hash
from storekit.realisation import Realisation
from storekit.storepath import StoreDir, StorePath
from storekit.wire.common import (
    read_keyed_drv_output,
    read_legacy_built_outputs,
    read_optional_ca,
    read_optional_store_path,
    read_store_path,
    read_store_paths,
    read_unkeyed_realisation,
    write_keyed_drv_output,
    write_legacy_built_outputs,
    write_optional_ca,
    write_optional_store_path,
    write_store_paths,
    write_unkeyed_realisation,
)
from storekit.wire.framing import WireReader, WireWriter
from storekit.wire.values import BuildOptions, BuildResult, BuildStatus, PathInfo

SERVE_MAGIC_1 = 0x390C9DEB
SERVE_MAGIC_2 = 0x5452EECB
NIX_2_8_VERSION = 0x207
LATEST_VERSION = 0x208


class ServeCommand(IntEnum):
    """The commands a serve-protocol client sends (Nix's `ServeProto::Command`)."""

    QueryValidPaths = 1
    QueryPathInfos = 2
    DumpStorePath = 3
    ImportPaths = 4
    ExportPaths = 5
    BuildPaths = 6
    QueryClosure = 7
    BuildDerivation = 8
    AddToStoreNar = 9


def negotiate(client_version: int, server_version: int) -> int:
    """The version both sides speak: the lower one (the major must be 2 on both)."""
    for v in (client_version, server_version):
        if v & 0xFF00 != 0x200:
            raise ValueError(f"serve protocol version {v >> 8}.{v & 0xFF} is not 2.x")
    return min(client_version, server_version)


def minor(version: int) -> int:
    return version & 0xFF


def read_handshake(r: WireReader) -> int:
    """The server's answer: magic 2 and its version (the client refuses another major version)."""
    at = r.offset
    magic = r.u64()
    if magic != SERVE_MAGIC_2:
        expected = f"{SERVE_MAGIC_2:#x}"
        raise WireFormatError(f"protocol mismatch: expected serve magic {expected}, got {magic:#x}", at)
    version = r.u64()
    if version & 0xFF00 != 0x200:
        raise WireFormatError(f"unsupported serve protocol version {version >> 8}.{version & 0xFF}", at + 8)
    return version


def write_handshake(w: WireWriter, version: int) -> None:
    w.u64(SERVE_MAGIC_2).u64(version)


def read_build_result(r: WireReader, sd: StoreDir, version: int) -> BuildResult:
    at = r.offset
    raw = r.u64()
    try:
        status = BuildStatus(raw)
    except ValueError:
        raise WireFormatError(f"unknown build status {raw}", at) from None
    error_msg = r.string()
    if minor(version) < 3:
        return BuildResult(status, error_msg)
    times, nondet, start, stop = r.u64(), r.bool(), r.u64(), r.u64()
    outputs: dict[str, Realisation] = {}
    if minor(version) >= 8:
        outputs = {r.string(): read_unkeyed_realisation(r, sd) for _ in range(r.count())}
    elif minor(version) >= 6:
        outputs = read_legacy_built_outputs(r, sd)
    return BuildResult(status, error_msg, times, nondet, start, stop, built_outputs=outputs)


def write_build_result(w: WireWriter, value: BuildResult, version: int) -> None:
    w.u64(value.status).string(value.error_msg)
    if minor(version) < 3:
        return
    w.u64(value.times_built).bool(value.is_non_deterministic).u64(value.start_time).u64(value.stop_time)
    if minor(version) >= 8:
        w.u64(len(value.built_outputs))
        for name, realisation in sorted(value.built_outputs.items()):
            w.string(name)
            write_unkeyed_realisation(w, realisation)
    elif minor(version) >= 6:
        write_legacy_built_outputs(w, dict(value.built_outputs))


def read_unkeyed_path_info(r: WireReader, sd: StoreDir, version: int) -> PathInfo:
    deriver = read_optional_store_path(r, sd)
    references = read_store_paths(r, sd)
    download_size, nar_size = r.u64(), r.u64()
    if minor(version) < 4:
        return PathInfo(None, nar_size, references, deriver, download_size=download_size)
    at = r.offset
    text = r.string()
    try:
        nar_hash = Hash.parse(text)
    except ValueError as e:
        raise WireFormatError(str(e), at) from e
    ca = read_optional_ca(r)
    sigs = tuple(r.strings())
    return PathInfo(nar_hash, nar_size, references, deriver, sigs=sigs, ca=ca, download_size=download_size)


def write_unkeyed_path_info(w: WireWriter, value: PathInfo, version: int) -> None:
    write_optional_store_path(w, value.deriver)
    write_store_paths(w, value.references)
    size = value.download_size if value.download_size is not None else value.nar_size
    w.u64(size).u64(value.nar_size)
    if minor(version) >= 4:
        if value.nar_hash is None:
            raise ValueError("serve protocol >= 2.4 sends the NAR hash; this path info has none")
        w.string(str(value.nar_hash))
        write_optional_ca(w, value.ca)
        w.strings(value.sigs)


def read_build_options(r: WireReader, version: int) -> BuildOptions:
    max_silent, timeout = r.u64(), r.u64()
    log_size = r.u64() if minor(version) >= 2 else 0
    repeats, enforce = (r.u64(), r.bool()) if minor(version) >= 3 else (0, False)
    keep_failed = r.bool() if minor(version) >= 7 else False
    return BuildOptions(max_silent, timeout, log_size, repeats, enforce, keep_failed)


def write_build_options(w: WireWriter, value: BuildOptions, version: int) -> None:
    w.u64(value.max_silent_time).u64(value.build_timeout)
    if minor(version) >= 2:
        w.u64(value.max_log_size)
    if minor(version) >= 3:
        w.u64(value.nr_repeats).bool(value.enforce_determinism)
    if minor(version) >= 7:
        w.bool(value.keep_failed)


def write_basic_derivation(w: WireWriter, drv_path: StorePath, drv: Derivation) -> None:
    """`BuildDerivation`'s argument: the `.drv` path, then the derivation without its input derivations.

    (The build hook puts the whole input closure in `inputSrcs`, so the far side needs no `.drv`.)
    """
    if drv.input_drvs:
        raise ValueError("a basic derivation has no input derivations: resolve them into input sources")
    w.string(str(drv_path)).u64(len(drv.outputs))
    for name, o in drv.outputs.items():
        w.string(name).string(o.path).string(o.hash_algo).string(o.hash)
    w.strings(drv.input_srcs).string(drv.system).string(drv.builder).strings(drv.args)
    w.u64(len(drv.env))
    for key, value in drv.env.items():
        w.string(key).string(value)


def read_basic_derivation(r: WireReader, sd: StoreDir) -> tuple[StorePath, Derivation]:
    drv_path = read_store_path(r, sd)
    outputs = {}
    for _ in range(r.count()):
        name = r.string()
        outputs[name] = DerivationOutput(r.string(), r.string(), r.string())
    input_srcs = tuple(str(p) for p in read_store_paths(r, sd))
    system, builder, args = r.string(), r.string(), tuple(r.strings())
    env = {}
    for _ in range(r.count()):
        key = r.string()
        env[key] = r.string()
    return drv_path, Derivation(outputs, {}, input_srcs, system, builder, args, env)


def read_realisation(r: WireReader, sd: StoreDir) -> Realisation:
    """Serve 2.8's realisation: its `DrvOutput` (by `.drv` path) then out path and signatures."""
    key = read_keyed_drv_output(r, sd)
    value = read_unkeyed_realisation(r, sd)
    return Realisation(value.out_path, value.signatures, id=key, json_keys=value.json_keys)


def write_realisation(w: WireWriter, value: Realisation) -> None:
    if value.id is None:
        raise ValueError("a realisation without its DrvOutput cannot be sent keyed")
    write_keyed_drv_output(w, value.id)
    write_unkeyed_realisation(w, value)
