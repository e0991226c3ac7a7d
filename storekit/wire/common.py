"""Encodings both protocols share (Nix's `CommonProto`): store paths, content addresses, realisations.

Store paths travel as full paths of the store dir both sides agreed on, `""` meaning none; content
addresses as their printed form (`fixed:r:sha256:<nix32>`), `""` meaning none; a `DrvOutput` as
`<hash>!<output>`; a realisation (before the worker protocol's `realisation-with-path-not-hash`
feature and serve 2.8) as one compact JSON string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from storekit.errors import InvalidStorePath, InvalidValue, WireFormatError
from storekit.realisation import DrvOutput, Realisation
from storekit.storepath import StoreDir, StorePath
from storekit.wire.framing import WireReader, WireWriter


def read_store_path(r: WireReader, sd: StoreDir) -> StorePath:
    at = r.offset
    text = r.string()
    try:
        return sd.parse_path(text)
    except InvalidStorePath as e:
        raise WireFormatError(str(e), at) from e


def read_optional_store_path(r: WireReader, sd: StoreDir) -> StorePath | None:
    at = r.offset
    text = r.string()
    if not text:
        return None
    try:
        return sd.parse_path(text)
    except InvalidStorePath as e:
        raise WireFormatError(str(e), at) from e


def write_optional_store_path(w: WireWriter, path: StorePath | None) -> None:
    w.string("" if path is None else str(path))


def read_store_paths(r: WireReader, sd: StoreDir) -> tuple[StorePath, ...]:
    return tuple(read_store_path(r, sd) for _ in range(r.count()))


def write_store_paths(w: WireWriter, paths: Iterable[StorePath]) -> None:
    w.strings(str(p) for p in paths)


_CA_PREFIXES = ("text:", "fixed:")


def read_optional_ca(r: WireReader) -> str | None:
    """A content address (`text:sha256:…`, `fixed:[r:|git:]algo:…`) or None for `""`."""
    at = r.offset
    text = r.string()
    if text and not text.startswith(_CA_PREFIXES):
        raise WireFormatError(f"'{text}' is not a content address", at)
    return text or None


def write_optional_ca(w: WireWriter, ca: str | None) -> None:
    w.string(ca or "")


def read_drv_output(r: WireReader) -> DrvOutput:
    at = r.offset
    try:
        return DrvOutput.parse(r.string())
    except InvalidValue as e:
        raise WireFormatError(str(e), at) from e


def write_drv_output(w: WireWriter, value: DrvOutput) -> None:
    w.string(str(value))


# --- realisations as JSON strings ------------------------------------------------------------------


def realisation_from_json(text: str, sd: StoreDir, at: int = 0) -> Realisation:
    """Parse the JSON string of a legacy realisation, remembering how it was written."""
    try:
        obj = json.loads(text)
        sigs_raw = obj.get("signatures", [])
        sig_objects = any(isinstance(s, dict) for s in sigs_raw)
        sigs = tuple(f"{s['keyName']}:{s['sig']}" if isinstance(s, dict) else str(s) for s in sigs_raw)
        dependent = {k: sd.parse_base_name(v) for k, v in obj.get("dependentRealisations", {}).items()}
        return Realisation(
            out_path=sd.parse_base_name(obj["outPath"]),
            signatures=sigs,
            id=DrvOutput.parse(obj["id"]) if "id" in obj else None,
            dependent=dependent,
            json_keys=tuple(sorted(obj)),
            json_sig_objects=sig_objects,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise WireFormatError(f"bad realisation JSON: {e}", at) from e


def realisation_to_json(value: Realisation) -> str:
    """Nix's compact JSON of a realisation (keys sorted, no spaces)."""
    sigs: list[Any] = list(value.signatures)
    if value.json_sig_objects:
        sigs = [dict(zip(("keyName", "sig"), s.split(":", 1), strict=True)) for s in value.signatures]
    full: dict[str, Any] = {
        "dependentRealisations": {k: v.base_name for k, v in sorted(value.dependent.items())},
        "id": str(value.id) if value.id is not None else None,
        "outPath": value.out_path.base_name,
        "signatures": sigs,
    }
    return json.dumps({k: full[k] for k in value.json_keys}, separators=(",", ":"), ensure_ascii=False)


def read_realisation_json(r: WireReader, sd: StoreDir) -> Realisation:
    at = r.offset
    return realisation_from_json(r.string(), sd, at)


def write_realisation_json(w: WireWriter, value: Realisation) -> None:
    w.string(realisation_to_json(value))


def read_legacy_built_outputs(r: WireReader, sd: StoreDir) -> dict[str, Realisation]:
    """`builtOutputs` as (DrvOutput, realisation JSON) pairs, keyed here by output name."""
    result = {}
    for _ in range(r.count()):
        key = read_drv_output(r)
        result[key.output] = read_realisation_json(r, sd)
    return result


def write_legacy_built_outputs(w: WireWriter, outputs: dict[str, Realisation]) -> None:
    w.u64(len(outputs))
    for name, value in sorted(outputs.items(), key=lambda kv: str(_key(kv[0], kv[1]))):
        write_drv_output(w, _key(name, value))
        write_realisation_json(w, value)


def _key(name: str, value: Realisation) -> DrvOutput:
    return value.id if value.id is not None else DrvOutput(name)


def read_unkeyed_realisation(r: WireReader, sd: StoreDir) -> Realisation:
    """The struct form (serve 2.8, worker `realisation-with-path-not-hash`): out path and signatures."""
    return Realisation(read_store_path(r, sd), tuple(r.strings()), json_keys=("outPath", "signatures"))


def write_unkeyed_realisation(w: WireWriter, value: Realisation) -> None:
    w.string(str(value.out_path)).strings(value.signatures)


def read_keyed_drv_output(r: WireReader, sd: StoreDir) -> DrvOutput:
    """A `DrvOutput` by `.drv` path and output name (serve 2.8, the newer worker feature)."""
    path = read_store_path(r, sd)
    return DrvOutput(r.string(), drv_path=path)


def write_keyed_drv_output(w: WireWriter, value: DrvOutput) -> None:
    if value.drv_path is None:
        raise ValueError(f"'{value}' has no .drv path, which this protocol version needs")
    w.string(str(value.drv_path)).string(value.output)


# --- realisations keyed by .drv path: the build trace of newer Nix ------------------------------------


def realisation_from_keyed_json(obj: Any, sd: StoreDir) -> Realisation:
    """`{"key": {drvPath, outputName}, "value": {outPath, signatures}}` (signatures as objects or strings)."""
    try:
        key, value = obj["key"], obj["value"]
        sigs = value.get("signatures", [])
        return Realisation(
            out_path=sd.parse_base_name(value["outPath"]),
            signatures=tuple(f"{s['keyName']}:{s['sig']}" if isinstance(s, dict) else str(s) for s in sigs),
            id=DrvOutput(key["outputName"], drv_path=sd.parse_base_name(key["drvPath"])),
            json_keys=("outPath", "signatures"),
            json_sig_objects=any(isinstance(s, dict) for s in sigs),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise InvalidValue(f"not a build trace entry {{key, value}}: {e}") from e


def realisation_to_keyed_json(value: Realisation) -> dict[str, Any]:
    if value.id is None or value.id.drv_path is None:
        raise ValueError("a build trace entry is keyed by its .drv path")
    sigs: list[Any] = list(value.signatures)
    if value.json_sig_objects:
        sigs = [dict(zip(("keyName", "sig"), s.split(":", 1), strict=True)) for s in value.signatures]
    return {
        "key": {"drvPath": value.id.drv_path.base_name, "outputName": value.id.output},
        "value": {"outPath": value.out_path.base_name, "signatures": sigs},
    }


def realisation_fingerprint(value: Realisation) -> str:
    """What a realisation's signatures sign: its JSON without the signatures, compact.

    Keyed by `.drv` path (newer Nix): `{"key":{…},"value":{"outPath":…}}`; keyed by hash (Nix 2.8):
    `{"dependentRealisations":{…},"id":…,"outPath":…}`.
    """
    if value.id is not None and value.id.drv_path is not None:
        obj = realisation_to_keyed_json(value)
        del obj["value"]["signatures"]
    else:
        obj = json.loads(realisation_to_json(value))
        obj.pop("signatures", None)
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
