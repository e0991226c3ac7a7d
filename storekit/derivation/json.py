"""The JSON form of derivations that Nix 2.8's `nix show-derivation` prints, both ways.

`to_json`/`from_json` convert between values and plain JSON objects; `dumps` renders an object the way
Nix 2.8's own JSON writer does (two-space indent, `{}`/`[]` when empty, key order as inserted, only
`"`, `\\`, `\\n`, `\\r`, `\\t` and other control characters (as `\\u00xx`) escaped, every other byte
verbatim), so `storekit drv show` output can be compared with Nix's byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from storekit.derivation.model import IMPURE, Derivation, DerivationOutput, check_hash_algo
from storekit.errors import DerivationParseError, InvalidHash

_ESCAPE = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPE.update({chr(c): f"\\u{c:04x}" for c in range(32) if chr(c) not in _ESCAPE})
_TABLE = str.maketrans(_ESCAPE)


# --- values -> JSON ----------------------------------------------------------------------------------


def _output_json(o: DerivationOutput) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if o.path:
        obj["path"] = o.path
    if o.hash_algo:
        obj["hashAlgo"] = o.hash_algo
    if o.is_fixed:
        obj["hash"] = o.hash
    if o.is_impure:
        obj["impure"] = True
    return obj


def to_json(drv_path: str, drv: Derivation) -> dict[str, Any]:
    """`{drv_path: {...}}` with Nix 2.8's keys in Nix 2.8's order."""
    return {
        drv_path: {
            "outputs": {name: _output_json(o) for name, o in drv.outputs.items()},
            "inputSrcs": list(drv.input_srcs),
            "inputDrvs": {p: list(names) for p, names in drv.input_drvs.items()},
            "system": drv.system,
            "builder": drv.builder,
            "args": list(drv.args),
            "env": dict(drv.env),
        }
    }


def dumps(obj: Any, indent: int = 0) -> str:
    """Render like Nix 2.8's pretty-printing JSON writer (no trailing newline)."""
    pad = "  " * (indent + 1)
    if isinstance(obj, str):
        return '"' + obj.translate(_TABLE) + '"'
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, Mapping):
        if not obj:
            return "{}"
        body = ",".join(f"\n{pad}{dumps(k)}: {dumps(v, indent + 1)}" for k, v in obj.items())
        return "{" + body + "\n" + "  " * indent + "}"
    if isinstance(obj, list | tuple):
        if not obj:
            return "[]"
        body = ",".join(f"\n{pad}{dumps(v, indent + 1)}" for v in obj)
        return "[" + body + "\n" + "  " * indent + "]"
    raise TypeError(f"cannot render {type(obj).__name__} as JSON")


# --- JSON -> values ----------------------------------------------------------------------------------


def loads(text: str) -> Any:
    """Parse JSON text, turning a syntax error into a `DerivationParseError` with a caret."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DerivationParseError(f"invalid JSON: {e.msg}", text, (e.pos, e.pos + 1)) from e


def _fail(where: str, message: str) -> DerivationParseError:
    return DerivationParseError(f"derivation JSON, {where}: {message}")


def _typed(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise _fail(where, f"expected {what}, found {type(value).__name__}")
    return value


def _strings(value: Any, where: str) -> list[str]:
    items = _typed(value, list, where, "a list of strings")
    for i, s in enumerate(items):
        _typed(s, str, f"{where}[{i}]", "a string")
    return list(items)


def _string_map(value: Any, where: str) -> dict[str, str]:
    obj = _typed(value, dict, where, "an object of strings")
    for k, v in obj.items():
        _typed(v, str, f"{where}.{k}", "a string")
    return dict(obj)


def _output_from_json(value: Any, where: str) -> DerivationOutput:
    obj = _typed(value, dict, where, "an object")
    unknown = set(obj) - {"path", "hashAlgo", "hash", "impure"}
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    path = _typed(obj.get("path", ""), str, f"{where}.path", "a string")
    hash_algo = _typed(obj.get("hashAlgo", ""), str, f"{where}.hashAlgo", "a string")
    hash_ = _typed(obj.get("hash", ""), str, f"{where}.hash", "a string")
    if obj.get("impure", False) is True:
        hash_ = IMPURE
    if hash_algo and (problem := check_hash_algo(hash_algo)):
        raise _fail(f"{where}.hashAlgo", problem)
    output = DerivationOutput(path, hash_algo, hash_)
    if hash_ and not hash_algo:
        raise _fail(where, "'hash' needs 'hashAlgo'")
    if output.is_fixed:
        try:
            output = DerivationOutput(path, hash_algo, output.content_hash.base16)
        except InvalidHash as e:
            raise _fail(f"{where}.hash", str(e)) from e
        if not path:
            raise _fail(where, "a fixed output needs its 'path'")
    elif hash_algo and path:
        raise _fail(where, "only fixed outputs and input-addressed outputs have a 'path'")
    return output


def _derivation_from_json(value: Any, where: str) -> Derivation:
    obj = _typed(value, dict, where, "an object")
    missing = {"outputs", "inputSrcs", "inputDrvs", "system", "builder", "args", "env"} - set(obj)
    if missing:
        raise _fail(where, f"missing keys {sorted(missing)}")
    outputs_obj = _typed(obj["outputs"], dict, f"{where}.outputs", "an object")
    if not outputs_obj:
        raise _fail(f"{where}.outputs", "a derivation must have at least one output")
    outputs = {n: _output_from_json(o, f"{where}.outputs.{n}") for n, o in outputs_obj.items()}
    drvs_obj = _typed(obj["inputDrvs"], dict, f"{where}.inputDrvs", "an object")
    input_drvs = {p: tuple(_strings(v, f"{where}.inputDrvs.{p}")) for p, v in drvs_obj.items()}
    return Derivation(
        outputs=outputs,
        input_drvs=input_drvs,
        input_srcs=tuple(_strings(obj["inputSrcs"], f"{where}.inputSrcs")),
        system=_typed(obj["system"], str, f"{where}.system", "a string"),
        builder=_typed(obj["builder"], str, f"{where}.builder", "a string"),
        args=tuple(_strings(obj["args"], f"{where}.args")),
        env=_string_map(obj["env"], f"{where}.env"),
    )


def from_json_all(obj: Any) -> list[tuple[str, Derivation]]:
    """Every `(drv path, Derivation)` of a `nix show-derivation` object, in its order."""
    top = _typed(obj, dict, "top level", "an object mapping .drv paths to derivations")
    return [(path, _derivation_from_json(value, path)) for path, value in top.items()]


def from_json(obj: Any) -> tuple[str, Derivation]:
    """The one `(drv path, Derivation)` of a `nix show-derivation` object holding exactly one."""
    found = from_json_all(obj)
    if len(found) != 1:
        raise _fail("top level", f"expected exactly one derivation, found {len(found)}")
    return found[0]
