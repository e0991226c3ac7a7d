"""Every JSON form of a derivation Nix has printed since 2.8, both ways.

Nix's own informal numbering (its derivation JSON schema lists it), with storekit's `0` for the form
Nix 2.8 to 2.14 print:

- 0, Nix 2.8 `nix show-derivation`: `{drvPath: {outputs, inputSrcs, inputDrvs, system, builder, args,
  env}}`, keys in that order.
- 1, Nix 2.15 `nix derivation show`: a `name` field; keys sorted; `inputDrvs` values
  `{outputs, dynamicOutputs}` (since 2.18; the list form of 2.15-2.17 is read too).
- 2, Nix 2.23: outputs split `"r:sha256"` into `method` (`nar`) and `hashAlgo` (`sha256`).
- 3: `"version": 3`; store paths as base names (no store dir); fixed outputs lose their path.
- 4: `"version": 4`; `inputs.{srcs,drvs}`; fixed outputs as content addresses (SRI hash); structured
  attributes as `structuredAttrs`; `nix derivation show` wraps `{version, derivations}`.

Reading takes any of them, bare (one derivation, as `nix derivation add` reads it) or wrapped (what
`show` prints). Forms 3 and 4 carry base names, so reading them needs the store dir. A fixed output's
path is not in forms 3 and 4: it is recomputed from its content address and the derivation's name.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from storekit.derivation.hashing import fixed_output_path
from storekit.derivation.json import dumps as dumps_nix28
from storekit.derivation.json import to_json as to_json_nix28
from storekit.derivation.model import (
    CA_METHOD_PREFIXES,
    IMPURE,
    Derivation,
    DerivationOutput,
    DynamicOutputs,
    check_hash_algo,
    sort_key,
)
from storekit.errors import DerivationParseError, InvalidHash, InvalidStorePath
from storekit.hashing import Hash
from storekit.storepath import StoreDir

JSON_FORMATS = (0, 1, 2, 3, 4)
"""`storekit drv show --json-format N`: 0 is Nix 2.8's form, 1-4 Nix's own derivation JSON versions."""

STRUCTURED_ATTRS = "__json"
_METHOD_PREFIX = {name: prefix for prefix, name in CA_METHOD_PREFIXES.items()}


@dataclass(frozen=True, slots=True)
class Entry:
    """One derivation read from JSON: its `.drv` path and name when the JSON says them."""

    path: str | None
    name: str | None
    drv: Derivation


# --- values -> JSON --------------------------------------------------------------------------------


def render(obj: Any, version: int) -> str:
    """The text Nix prints for `obj` (with the final newline): 2.8's writer, or nlohmann's from 2.15 on."""
    if version == 0:
        return dumps_nix28(obj) + "\n"
    return json.dumps(_sorted(obj), indent=2, ensure_ascii=False) + "\n"


def _sorted(obj: Any) -> Any:
    """Keys in byte order, as nlohmann's std::map keeps them."""
    if isinstance(obj, Mapping):
        return {k: _sorted(obj[k]) for k in sorted(obj, key=sort_key)}
    if isinstance(obj, list | tuple):
        return [_sorted(v) for v in obj]
    return obj


def compact(obj: Any) -> str:
    """nlohmann's `dump()`: how Nix writes structured attributes into the `__json` variable."""
    return json.dumps(_sorted(obj), separators=(",", ":"), ensure_ascii=False)


def _path(p: str, store_dir: StoreDir, version: int) -> str:
    if version < 3:
        return p
    return store_dir.parse_path(p).base_name


def output_to_json(
    o: DerivationOutput, out_name: str, name: str, store_dir: StoreDir, version: int
) -> dict[str, Any]:
    if version < 2:
        return to_json_nix28("", Derivation({out_name: o}))[""]["outputs"][out_name]  # type: ignore[no-any-return]
    obj: dict[str, Any] = {}
    if o.is_fixed:
        want = str(fixed_output_path(store_dir, name, out_name, o)) if version >= 3 else o.path
        if o.path != want:
            raise DerivationParseError(
                f"fixed output '{out_name}' of '{name}' has path '{o.path}', but its content address "
                f"makes it '{want}'"
            )
        if version < 3:
            obj["path"] = o.path
        obj["method"] = o.ca_method
        if version >= 4:
            obj["hash"] = o.content_hash.sri
        else:
            obj["hashAlgo"] = o.algo
            obj["hash"] = o.hash
        return obj
    if o.path:
        obj["path"] = _path(o.path, store_dir, version)
    if o.hash_algo:
        obj["method"] = o.ca_method
        obj["hashAlgo"] = o.algo
    if o.is_impure:
        obj["impure"] = True
    return obj


def _node(outputs: Iterable[str], children: Mapping[str, DynamicOutputs]) -> dict[str, Any]:
    return {
        "dynamicOutputs": {k: _node(c.outputs, c.children) for k, c in children.items()},
        "outputs": list(outputs),
    }


def to_json(drv: Derivation, name: str, store_dir: StoreDir, version: int) -> dict[str, Any]:
    """The bare object of one derivation in format `version` (1-4; 0 has no bare form of its own)."""
    if version not in JSON_FORMATS[1:]:
        raise ValueError(f"no bare derivation JSON of format {version}")
    drvs = {
        _path(p, store_dir, version): _node(names, drv.dynamic_outputs.get(p, {}))
        for p, names in drv.input_drvs.items()
    }
    srcs = [_path(p, store_dir, version) for p in drv.input_srcs]
    env = dict(drv.env)
    obj: dict[str, Any] = {
        "name": name,
        "outputs": {n: output_to_json(o, n, name, store_dir, version) for n, o in drv.outputs.items()},
        "system": drv.system,
        "builder": drv.builder,
        "args": list(drv.args),
    }
    if version >= 4:
        obj["inputs"] = {"drvs": drvs, "srcs": srcs}
        if STRUCTURED_ATTRS in env:
            obj["structuredAttrs"] = _structured(env.pop(STRUCTURED_ATTRS), name)
    else:
        obj["inputDrvs"] = drvs
        obj["inputSrcs"] = srcs
    obj["env"] = env
    if version >= 3:
        obj["version"] = version
    return obj


def _structured(text: str, name: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise DerivationParseError(f"derivation '{name}': '__json' is not JSON: {e.msg}") from e
    if not isinstance(value, dict):
        raise DerivationParseError(f"derivation '{name}': '__json' is not a JSON object")
    return value


def show(entries: Iterable[tuple[str, Derivation]], store_dir: StoreDir, version: int) -> dict[str, Any]:
    """What `nix show-derivation` / `nix derivation show` of that version prints for these `.drv` paths."""
    if version == 0:
        obj: dict[str, Any] = {}
        for path, drv in sorted(entries, key=lambda e: sort_key(e[0])):
            if drv.dynamic_outputs:
                raise DerivationParseError(
                    f"'{path}' uses outputs of dynamic derivations, which Nix 2.8's JSON cannot show; "
                    "use --json-format 1 or later"
                )
            obj.update(to_json_nix28(path, drv))
        return obj
    shown = {}
    for path, drv in entries:
        name = store_dir.parse_path(path).name.removesuffix(".drv")
        shown[_path(path, store_dir, version)] = to_json(drv, name, store_dir, version)
    return {"derivations": shown, "version": 4} if version >= 4 else shown


# --- JSON -> values --------------------------------------------------------------------------------


def _fail(where: str, message: str) -> DerivationParseError:
    return DerivationParseError(f"derivation JSON, {where}: {message}")


def _typed(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _fail(where, f"expected {what}, found {type(value).__name__}")
    return value


def _strings(value: Any, where: str) -> list[str]:
    items = _typed(value, list, where, "a list of strings")
    for i, s in enumerate(items):
        _typed(s, str, f"{where}[{i}]", "a string")
    return list(items)


def _keys(obj: dict[str, Any], where: str, required: set[str], optional: set[str]) -> None:
    missing = required - set(obj)
    if missing:
        raise _fail(where, f"missing keys {sorted(missing)}")
    unknown = set(obj) - required - optional
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")


class _Reader:
    """Reads one bare derivation object of any version; `version` None means formats 0-2."""

    def __init__(self, store_dir: StoreDir | None, version: int | None, where: str) -> None:
        self.store_dir = store_dir
        self.version = version
        self.where = where

    def path(self, value: Any, where: str) -> str:
        return _store_path(
            _typed(value, str, where, "a store path"), self.store_dir, self.version is None, where
        )

    def node(self, value: Any, where: str) -> DynamicOutputs:
        if isinstance(value, list):
            return DynamicOutputs(tuple(_strings(value, where)))
        obj = _typed(value, dict, where, "a list of output names or {outputs, dynamicOutputs}")
        _keys(obj, where, {"outputs"}, {"dynamicOutputs"})
        children = _typed(obj.get("dynamicOutputs", {}), dict, f"{where}.dynamicOutputs", "an object")
        return DynamicOutputs(
            tuple(_strings(obj["outputs"], f"{where}.outputs")),
            {k: self.node(v, f"{where}.dynamicOutputs.{k}") for k, v in children.items()},
        )

    def output(self, value: Any, where: str) -> DerivationOutput:
        obj = _typed(value, dict, where, "an object")
        _keys(obj, where, set(), {"path", "hashAlgo", "hash", "method", "impure"})
        path = self.path(obj["path"], f"{where}.path") if "path" in obj else ""
        hash_algo = _typed(obj.get("hashAlgo", ""), str, f"{where}.hashAlgo", "a string")
        if "method" in obj:
            method = _typed(obj["method"], str, f"{where}.method", "a string")
            if method not in _METHOD_PREFIX:
                raise _fail(f"{where}.method", f"unknown method '{method}' (known: flat, nar, text, git)")
            hash_algo = _METHOD_PREFIX[method] + hash_algo
        hash_ = _typed(obj.get("hash", ""), str, f"{where}.hash", "a string")
        if hash_ and self.version == 4:
            if "hashAlgo" in obj:
                raise _fail(where, "a fixed output names its algorithm in its SRI 'hash', not 'hashAlgo'")
            try:
                parsed = Hash.parse(hash_)
            except InvalidHash as e:
                raise _fail(f"{where}.hash", str(e)) from e
            hash_algo, hash_ = hash_algo + parsed.algo, parsed.base16
        if obj.get("impure", False) is not False:
            if obj["impure"] is not True:
                raise _fail(f"{where}.impure", "expected true")
            hash_ = IMPURE
        if hash_ not in ("", IMPURE) and not DerivationOutput("", hash_algo).algo:
            raise _fail(where, "'hash' needs 'hashAlgo'")
        if hash_algo and (problem := check_hash_algo(hash_algo)):
            raise _fail(f"{where}.hashAlgo", problem)
        output = DerivationOutput(path, hash_algo, hash_)
        if output.is_fixed:
            try:
                output = DerivationOutput(path, hash_algo, output.content_hash.base16)
            except InvalidHash as e:
                raise _fail(f"{where}.hash", str(e)) from e
        elif hash_algo and path:
            raise _fail(where, "only fixed outputs and input-addressed outputs have a 'path'")
        return output

    def derivation(self, obj: dict[str, Any]) -> tuple[str | None, Derivation]:
        w = self.where
        common = {"outputs", "system", "builder", "args", "env"}
        if self.version == 4:
            _keys(obj, w, common | {"name", "version", "inputs"}, {"structuredAttrs"})
            inputs = _typed(obj["inputs"], dict, f"{w}.inputs", "an object")
            _keys(inputs, f"{w}.inputs", {"srcs", "drvs"}, set())
            srcs, drvs = inputs["srcs"], inputs["drvs"]
        else:
            required = common | {"inputSrcs", "inputDrvs"} | ({"name", "version"} if self.version else set())
            _keys(obj, w, required, {"name"})
            srcs, drvs = obj["inputSrcs"], obj["inputDrvs"]
        name = _typed(obj["name"], str, f"{w}.name", "a string") if "name" in obj else None
        outputs_obj = _typed(obj["outputs"], dict, f"{w}.outputs", "an object")
        outputs = {n: self.output(o, f"{w}.outputs.{n}") for n, o in outputs_obj.items()}
        drvs_obj = _typed(drvs, dict, f"{w}.inputDrvs", "an object")
        nodes = {
            self.path(p, f"{w}.inputDrvs"): self.node(v, f"{w}.inputDrvs.{p}") for p, v in drvs_obj.items()
        }
        env = dict(_typed(obj["env"], dict, f"{w}.env", "an object of strings"))
        for k, v in env.items():
            _typed(v, str, f"{w}.env.{k}", "a string")
        if "structuredAttrs" in obj:
            env[STRUCTURED_ATTRS] = compact(
                _typed(obj["structuredAttrs"], dict, f"{w}.structuredAttrs", "an object")
            )
        drv = Derivation(
            outputs=outputs,
            input_drvs={p: n.outputs for p, n in nodes.items()},
            input_srcs=tuple(self.path(p, f"{w}.inputSrcs") for p in _strings(srcs, f"{w}.inputSrcs")),
            system=_typed(obj["system"], str, f"{w}.system", "a string"),
            builder=_typed(obj["builder"], str, f"{w}.builder", "a string"),
            args=tuple(_strings(obj["args"], f"{w}.args")),
            env=env,
            dynamic_outputs={p: n.children for p, n in nodes.items()},
        )
        return name, _fill_fixed_paths(drv, name, self.store_dir, w)


def output_from_json(
    value: Any, store_dir: StoreDir, version: int, drv_name: str, name: str
) -> DerivationOutput:
    """One output object of format `version` (a fixed output gets its path from `drv_name`)."""
    output = _Reader(store_dir, version if version >= 3 else None, name).output(value, name)
    if output.is_fixed and not output.path:
        output = output.with_path(str(fixed_output_path(store_dir, drv_name, name, output)))
    return output


def _store_path(text: str, store_dir: StoreDir | None, full: bool, where: str) -> str:
    """A full path (forms 0-2: its store dir is the given one, else its own) or a base name (3, 4)."""
    try:
        if full:
            return str((store_dir or StoreDir(posixpath.dirname(text) or "/")).parse_path(text))
        return str((store_dir or StoreDir()).parse_base_name(text))
    except InvalidStorePath as e:
        raise _fail(where, str(e)) from e


def _fill_fixed_paths(
    drv: Derivation, name: str | None, store_dir: StoreDir | None, where: str
) -> Derivation:
    """Forms 3 and 4 leave a fixed output's path out: it follows from the hash and the name."""
    missing = [n for n, o in drv.outputs.items() if o.is_fixed and not o.path]
    if not missing:
        return drv
    if name is None:
        raise _fail(where, "a fixed output without 'path' needs the derivation's 'name'")
    outputs = dict(drv.outputs)
    for n in missing:
        sd = store_dir or StoreDir()
        outputs[n] = outputs[n].with_path(str(fixed_output_path(sd, name, n, outputs[n])))
    return Derivation(
        outputs,
        drv.input_drvs,
        drv.input_srcs,
        drv.system,
        drv.builder,
        drv.args,
        drv.env,
        drv.dynamic_outputs,
    )


def _version(obj: dict[str, Any], where: str) -> int | None:
    if "version" not in obj:
        return None
    v = obj["version"]
    if isinstance(v, bool) or v not in (3, 4):
        raise _fail(
            f"{where}.version",
            f"unsupported derivation JSON version {json.dumps(v)} "
            "(storekit reads 3, 4 and the unversioned forms)",
        )
    return int(v)


def _bare(obj: dict[str, Any], store_dir: StoreDir | None, path: str | None, where: str) -> Entry:
    name, drv = _Reader(store_dir, _version(obj, where), where).derivation(obj)
    return Entry(path, name, drv)


def _looks_bare(obj: dict[str, Any]) -> bool:
    return "builder" in obj or "outputs" in obj


def from_json_any(obj: Any, store_dir: StoreDir | None = None) -> list[Entry]:
    """Every derivation in `obj`, which may be any format 0-4, bare or wrapped as `show` prints it.

    `store_dir` is the store dir of base names (default `/nix/store`); full paths keep their own unless
    it is given."""
    top = _typed(obj, dict, "top level", "an object")
    if "derivations" in top and not _looks_bare(top):
        _keys(top, "top level", {"derivations", "version"}, set())
        if _version(top, "top level") != 4:
            raise _fail("top level.version", "the {version, derivations} wrapper is version 4")
        top = _typed(top["derivations"], dict, "derivations", "an object")
        keyed_by_base = True
    elif _looks_bare(top):
        return [_bare(top, store_dir, None, "top level")]
    else:
        keyed_by_base = None
    entries = []
    for key, value in top.items():
        body = _typed(value, dict, key, "a derivation object")
        base = keyed_by_base if keyed_by_base is not None else not key.startswith("/")
        path = _store_path(key, store_dir, not base, key)
        entries.append(_bare(body, store_dir, path, key))
    return entries
