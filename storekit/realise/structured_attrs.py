"""Structured attributes (`__structuredAttrs = true`): `.attrs.json` and `.attrs.sh` as Nix 2.8 writes them.

A derivation with structured attributes carries all its attributes as one JSON document in the env
variable `__json` instead of one env variable each. Nix 2.8 (`ParsedDerivation::prepareStructuredAttrs`
and `writeStructuredAttrsShell`, `LocalDerivationGoal::writeStructuredAttrs`) then:

- adds `outputs`: output name -> the output's path;
- replaces each key of an `exportReferencesGraph` object by the path-info JSON of the closure of the
  paths it names (`export_graph.py` computes those from the store);
- writes the document to `.attrs.json`, serialised by nlohmann::json (keys sorted bytewise, no spaces,
  its own float format), and a bash rendering of its simple values to `.attrs.sh`;
- rewrites the hash placeholders of the outputs (`placeholder "out"`) in both files to output paths;
- gives the builder none of the attributes as env variables: only the fixed ones, `impureEnvVars`
  (fixed-output derivations) and `NIX_ATTRS_JSON_FILE` / `NIX_ATTRS_SH_FILE`.

Nix 2.8 points `NIX_ATTRS_*_FILE` at the build directory's *host* path, which does not exist inside its
sandbox (fixed in Nix 2.15); storekit points them at `/build/.attrs.*`, where the files are.

Pure: values in, texts out. The byte format is checked against real Nix 2.8 by
tests/interop/test_structured_attrs_interop.py.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping

from storekit.derivation.hashing import hash_placeholder
from storekit.derivation.model import Derivation
from storekit.errors import BuildError

TYPE_CHECKING = False  # no `typing` at run time: a plain build imports this module (start-up)
if TYPE_CHECKING:
    from typing import Any

JSON_FILE = ".attrs.json"
SH_FILE = ".attrs.sh"
ENV_JSON = "NIX_ATTRS_JSON_FILE"
ENV_SH = "NIX_ATTRS_SH_FILE"


def is_name(text: str, more: str = "") -> bool:
    """Whether `text` is `[A-Za-z_][A-Za-z0-9_<more>]*`: a shell variable's name (`.attrs.sh`), or with
    `more=".-"` a file name `exportReferencesGraph` may write. Without `re`, which only these checks
    would import on the path of every build (its start-up)."""
    if not text or not text.isascii() or not (text[0].isalpha() or text[0] == "_"):
        return False
    return all(c.isalnum() or c == "_" or c in more for c in text)


_INT_MIN = -(2**31)


def is_structured(drv: Derivation) -> bool:
    return "__json" in drv.env


def parse(drv: Derivation, label: str) -> dict[str, Any]:
    """The `__json` document as a dict; `BuildError` (for the build `label`) when it is not a JSON object."""
    import json  # (structured attrs only: a plain build does not import it)

    raw = drv.env["__json"].encode("utf-8", "surrogateescape")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise BuildError(label, f"cannot process its __json attribute: {e}") from e
    if not isinstance(value, dict):
        raise BuildError(label, "cannot process its __json attribute: it is not a JSON object")
    try:  # a lone surrogate escape (\ud800) is no UTF-8; Nix's parser refuses it too
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise BuildError(label, f"cannot process its __json attribute: {e}") from e
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"'{name}' is not JSON")


def strings_attr(attrs: Mapping[str, Any], name: str, label: str) -> list[str] | None:
    """Nix's `getStringsAttr` in structured mode: a list of strings, or absent."""
    value = attrs.get(name)
    if value is None and name not in attrs:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BuildError(label, f"attribute '{name}' must be a list of strings")
    return value


def prepare(
    attrs: Mapping[str, Any], outputs: Mapping[str, str], graphs: Mapping[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The document the files are made of: `attrs` plus `outputs` (name -> path) and the
    `exportReferencesGraph` results (key -> path infos, see `export_graph.structured_graphs`)."""
    doc = dict(attrs)
    doc["outputs"] = dict(outputs)
    doc.update(graphs)
    return doc


def rewrite_placeholders(text: str, outputs: Mapping[str, str]) -> str:
    """Nix's `rewriteStrings(…, inputRewrites)`: each output's hash placeholder becomes its path."""
    for name, path in outputs.items():
        text = text.replace(hash_placeholder(name), path)
    return text


def files(doc: Mapping[str, Any], outputs: Mapping[str, str]) -> dict[str, str]:
    """`.attrs.json` and `.attrs.sh` for `doc`, placeholders rewritten."""
    return {
        JSON_FILE: rewrite_placeholders(dump_json(doc), outputs),
        SH_FILE: rewrite_placeholders(shell(doc), outputs),
    }


# --- nlohmann::json's dump() ---------------------------------------------------------------------------


def dump_json(value: Any) -> str:
    """`value` serialised exactly as nlohmann::json's `dump()` (no indent) does."""
    parts: list[str] = []
    stack: list[Any] = [value]
    while stack:  # iterative: nesting depth is input
        item = stack.pop()
        if isinstance(item, _Raw):
            parts.append(item.text)
        elif isinstance(item, dict):
            keys = sorted(item, key=lambda k: k.encode("utf-8", "surrogateescape"))
            todo: list[Any] = [_Raw("{")]
            for i, key in enumerate(keys):
                todo += [_Raw(("," if i else "") + _dump_string(key) + ":"), item[key]]
            stack.extend(reversed([*todo, _Raw("}")]))
        elif isinstance(item, list):
            todo = [_Raw("[")]
            for i, elem in enumerate(item):
                todo += [_Raw(",")] if i else []
                todo.append(elem)
            stack.extend(reversed([*todo, _Raw("]")]))
        else:
            parts.append(_dump_scalar(item))
    return "".join(parts)


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _dump_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return dump_float(value)
    assert isinstance(value, str), type(value)
    return _dump_string(value)


def _dump_string(text: str) -> str:
    """nlohmann escapes `"`, `\\` and control characters (short forms where JSON has them), not `/`."""
    import json

    return json.dumps(text, ensure_ascii=False)


def dump_float(x: float) -> str:
    """nlohmann's `to_chars`: shortest digits, printf-`%g`-like layout between 1e-4 and 1e15."""
    if not math.isfinite(x):
        return "null"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    x = abs(x)
    if x == 0:
        return sign + "0.0"
    digits, exponent = _shortest(x)
    k = len(digits)
    n = k + exponent
    if k <= n <= 15:
        return sign + digits + "0" * (n - k) + ".0"
    if 0 < n <= 15:
        return sign + digits[:n] + "." + digits[n:]
    if -4 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    body = digits if k == 1 else digits[0] + "." + digits[1:]
    e = n - 1
    return f"{sign}{body}e{'-' if e < 0 else '+'}{abs(e):02d}"


def _shortest(x: float) -> tuple[str, int]:
    """The shortest round-trip decimal digits of `x` > 0 and their exponent: x = digits * 10**exponent."""
    text = repr(x)
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    exponent = (int(exp) if exp else 0) - len(frac)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped or "0", exponent


# --- writeStructuredAttrsShell ---------------------------------------------------------------------------


def shell(doc: Mapping[str, Any]) -> str:
    """`.attrs.sh`: `declare` lines for the keys that are shell names and whose values bash can hold
    (strings, integral numbers, null, Booleans, and lists or objects of those); the rest is left out."""
    lines = []
    for key in sorted(doc, key=lambda k: k.encode("utf-8", "surrogateescape")):
        if not is_name(key):
            continue
        value = doc[key]
        simple = _simple(value)
        if simple is not None:
            lines.append(f"declare {key}={simple}\n")
        elif isinstance(value, list):
            items = [_simple(v) for v in value]
            if all(s is not None for s in items):
                lines.append(f"declare -a {key}=({''.join(f'{s} ' for s in items)})\n")
        elif isinstance(value, dict):
            keys = sorted(value, key=lambda k: k.encode("utf-8", "surrogateescape"))
            pairs = [(k, _simple(value[k])) for k in keys]
            if all(s is not None for _, s in pairs):
                lines.append(f"declare -A {key}=({''.join(f'[{shell_escape(k)}]={s} ' for k, s in pairs)})\n")
    return "".join(lines)


def _simple(value: Any) -> str | None:
    if isinstance(value, str):
        return shell_escape(value)
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, (int, float)):
        return _shell_number(value)
    return None


def _shell_number(value: float) -> str | None:
    """Nix tests `ceil(f) == f` on the value as a C float, then prints it converted to a C int."""
    as_float: float = struct.unpack("f", struct.pack("f", value))[0] if _fits_float(value) else math.inf
    if math.isfinite(as_float) and math.ceil(as_float) != as_float:
        return None
    return str(_to_c_int(value))


def _fits_float(value: float) -> bool:
    return abs(value) <= 3.4028234663852886e38


def _to_c_int(value: float) -> int:
    """`static_cast<int>`: integers wrap modulo 2**32; floats truncate, out of range gives INT_MIN (x86)."""
    if isinstance(value, int):
        return (value + 2**31) % 2**32 - 2**31
    if not math.isfinite(value) or not -(2**31) <= math.trunc(value) < 2**31:
        return _INT_MIN
    return math.trunc(value)


def shell_escape(text: str) -> str:
    """Nix's `shellEscape`: single quotes, each `'` as `'\\''`."""
    return "'" + text.replace("'", "'\\''") + "'"
