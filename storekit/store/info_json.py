"""Path info as JSON, in every form `nix path-info --json` has printed, both ways.

- 0, Nix 2.8 to 2.18: a list of objects with `path`, and only the fields that are set, compact.
- 1, Nix 2.19: an object keyed by full path; each value has every field (`null` when unset), content
  addresses and signatures as strings, full paths; plus `storeDir` and `"version": 1`.
- 2: `{"version": 2, "storeDir": …, "info": {<base name>: …}}`; base names; a content address as
  `{method, hash}`.
- 3: as 2, and signatures as `{keyName, sig}` objects (Nix's store-object-info-v3 schema).

An object is *pure* when it holds only what the path's contents fix (hash, size, references, CA)
and *impure* with what one store adds (deriver, registration time, ultimate, signatures); `store
info` prints impure ones, like Nix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from storekit.errors import InvalidValue
from storekit.hashing import Hash
from storekit.store.base import ValidPathInfo
from storekit.store.content_address import ca_from_json, ca_to_json
from storekit.storepath import StoreDir, StorePath

INFO_FORMATS = (0, 1, 2, 3)
_IMPURE = ("deriver", "registrationTime", "signatures", "ultimate")


def to_json(info: ValidPathInfo, sd: StoreDir, version: int, *, impure: bool = True) -> dict[str, Any]:
    """One path's object of format `version` (1-3): Nix's `UnkeyedValidPathInfo::toJSON`."""

    def path(p: StorePath) -> str:
        return str(p) if version == 1 else p.base_name

    obj: dict[str, Any] = {
        "ca": (info.ca if version == 1 else ca_to_json(info.ca)) if info.ca else None,
        "narHash": info.nar_hash.sri,
        "narSize": info.nar_size,
        "references": sorted(path(r) for r in info.references),
        "storeDir": sd.path,
        "version": version,
    }
    if impure:
        obj["deriver"] = path(info.deriver) if info.deriver else None
        obj["registrationTime"] = info.registration_time or None
        obj["ultimate"] = info.ultimate
        sigs = sorted(info.sigs)
        obj["signatures"] = [_sig_json(s) for s in sigs] if version >= 3 else sigs
    return obj


def _sig_json(sig: str) -> dict[str, str]:
    name, sep, value = sig.partition(":")
    if not sep:
        raise InvalidValue(f"signature '{sig}' is not 'name:base64'")
    return {"keyName": name, "sig": value}


def from_json(obj: Any, sd: StoreDir, path: StorePath) -> ValidPathInfo:
    """Read one path's object of any format 1-3 (the version is its own `version`, 1 if absent)."""
    if not isinstance(obj, dict):
        raise InvalidValue(f"path info of '{path}' is not a JSON object")
    version = obj.get("version", 1)
    if version not in (1, 2, 3) or isinstance(version, bool):
        raise InvalidValue(f"unsupported path info JSON version {json.dumps(version)} (storekit reads 1-3)")

    def store_path(text: str) -> StorePath:
        return sd.parse_path(text) if version == 1 else sd.parse_base_name(text)

    try:
        ca = obj.get("ca")
        sigs = [f"{s['keyName']}:{s['sig']}" if isinstance(s, dict) else s for s in obj.get("signatures", [])]
        return ValidPathInfo(
            path=path,
            nar_hash=Hash.parse(obj["narHash"]),
            nar_size=int(obj["narSize"]),
            references=frozenset(store_path(r) for r in obj["references"]),
            deriver=store_path(obj["deriver"]) if obj.get("deriver") else None,
            registration_time=int(obj.get("registrationTime") or 0),
            ultimate=bool(obj.get("ultimate", False)),
            sigs=frozenset(sigs),
            ca=None if ca is None else (ca if isinstance(ca, str) else ca_from_json(ca)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidValue(f"path info of '{path}' is malformed: {e}") from e


def nix28_object(info: ValidPathInfo, closure_size: int | None = None) -> dict[str, Any]:
    """One element of Nix 2.8's `nix path-info --json` list (its field order, set fields only)."""
    out: dict[str, Any] = {
        "path": str(info.path),
        "narHash": info.nar_hash.sri,
        "narSize": info.nar_size,
        "references": sorted(str(r) for r in info.references),
    }
    if info.ca:
        out["ca"] = info.ca
    if closure_size is not None:
        out["closureSize"] = closure_size
    if info.deriver:
        out["deriver"] = str(info.deriver)
    if info.registration_time:
        out["registrationTime"] = info.registration_time
    if info.ultimate:
        out["ultimate"] = True
    if info.sigs:
        out["signatures"] = sorted(info.sigs)
    return out


def show(
    infos: Iterable[tuple[ValidPathInfo, int | None]], sd: StoreDir, version: int
) -> list[dict[str, Any]] | dict[str, Any]:
    """The whole document `nix path-info --json` of that format prints for these paths."""
    rows = list(infos)
    if version == 0:
        return [nix28_object(i, size) for i, size in rows]
    by_path = {}
    for info, size in rows:
        obj = to_json(info, sd, version)
        if size is not None:
            obj["closureSize"] = size
        by_path[str(info.path) if version == 1 else info.path.base_name] = obj
    if version == 1:
        return by_path
    return {"info": by_path, "storeDir": sd.path, "version": version}


def render(doc: Any, version: int) -> str:
    """Nix 2.8 prints compact JSON without a newline; later Nix prints nlohmann's compact dump + newline."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, sort_keys=version > 0)
    return text if version == 0 else text + "\n"


def read_document(doc: Any, sd: StoreDir) -> list[ValidPathInfo]:
    """Every path info of a `path-info --json` document of any format (0-3)."""
    if isinstance(doc, list):
        return [_nix28(obj, sd) for obj in doc]
    if not isinstance(doc, dict):
        raise InvalidValue("path info JSON is neither a list nor an object")
    if "info" in doc and "version" in doc:
        if doc["version"] not in (2, 3) or isinstance(doc["version"], bool):
            raise InvalidValue(f"unsupported path info JSON version {json.dumps(doc['version'])}")
        target = StoreDir(doc.get("storeDir", sd.path))
        return [from_json(o, target, target.parse_base_name(k)) for k, o in doc["info"].items()]
    return [from_json(o, sd, sd.parse_path(k)) for k, o in doc.items()]


def _nix28(obj: Any, sd: StoreDir) -> ValidPathInfo:
    if not isinstance(obj, dict) or "path" not in obj:
        raise InvalidValue("an element of Nix 2.8's path info list needs its 'path'")
    body = {k: v for k, v in obj.items() if k not in ("path", "closureSize", "valid")}
    return from_json({**body, "version": 1}, sd, sd.parse_path(obj["path"]))
