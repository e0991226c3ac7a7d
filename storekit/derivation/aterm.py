"""The ATerm text of a `.drv` file: `Derive([outputs],[inputDrvs],[inputSrcs],system,builder,[args],[env])`.

Printing follows Nix 2.8's `Derivation::unparse` to the byte: no whitespace, no trailing newline, and
escapes (`\\"`, `\\\\`, `\\n`, `\\r`, `\\t`) only in the builder, the args and the environment, since
Nix writes every other string (paths, output names, hash fields, system) verbatim.

The parser is stricter than Nix's: Nix reads `\\x` as `x` for any other `x`, which no printer ever
writes, so storekit calls that a bad escape; it also refuses duplicate keys and text after the final
`)`. Errors carry the span of the offending text and show it with a caret line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from storekit.derivation.model import (
    IMPURE,
    Derivation,
    DerivationOutput,
    DynamicOutputs,
    check_hash_algo,
    sort_key,
)
from storekit.errors import DerivationParseError, InvalidHash

# Every `storekit build` parses a `.drv` before it knows whether anything needs building: no `typing`
# (nor `re`, which it imports) at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn, TypeVar

    T = TypeVar("T")

_UNESCAPE = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_ESCAPE = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
DYNAMIC_VERSION = "xp-dyn-drv"
"""The one `DrvWithVersion(...)` tag Nix writes: for derivations using outputs of dynamic derivations."""


# --- printing ----------------------------------------------------------------------------------------


def escape(s: str) -> str:
    """Quote `s` with Nix's ATerm escaping (`printString`)."""
    return '"' + s.translate(_ESCAPE) + '"'


def _list(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _quoted_list(items: Iterable[str]) -> str:
    """A list of strings Nix prints verbatim (`printUnquotedStrings`)."""
    return "[" + ",".join('"' + s + '"' for s in items) + "]"


def print_aterm(
    drv: Derivation,
    *,
    mask_outputs: bool = False,
    input_drv_hashes: Mapping[str, str] | None = None,
) -> str:
    """The `.drv` text of `drv`, exactly as Nix writes it.

    `mask_outputs` blanks output paths and the env vars named after outputs (the form hashed to get
    input-addressed output paths). `input_drv_hashes` maps each input `.drv` path to the hex of its
    hash modulo, which then stands in for the path; inputs whose hashes coincide are merged, as Nix's
    `actualInputs` map does.
    """
    outputs = [
        f'("{name}","{"" if mask_outputs else o.path}","{o.hash_algo}","{o.hash}")'
        for name, o in drv.outputs.items()
    ]
    if input_drv_hashes is None:
        inputs = dict(drv.input_drvs)
    else:
        merged: dict[str, set[str]] = {}
        for path, names in drv.input_drvs.items():
            if names:  # Nix adds an entry per used output, so an input using none vanishes
                merged.setdefault(input_drv_hashes[path], set()).update(names)
        inputs = {h: tuple(sorted(merged[h], key=sort_key)) for h in sorted(merged)}
    dynamic = {} if input_drv_hashes is not None else drv.dynamic_outputs
    input_drvs = [f'("{p}",{_node(names, dynamic.get(p, {}))})' for p, names in inputs.items()]
    env = [
        f"({escape(k)},{escape('' if mask_outputs and k in drv.outputs else v)})" for k, v in drv.env.items()
    ]
    head = f'DrvWithVersion("{DYNAMIC_VERSION}",' if dynamic else "Derive("
    return (
        f"{head}{_list(outputs)},{_list(input_drvs)},{_quoted_list(drv.input_srcs)},"
        f'"{drv.system}",{escape(drv.builder)},{_list([escape(a) for a in drv.args])},{_list(env)})'
    )


def _node(names: Iterable[str], children: Mapping[str, DynamicOutputs]) -> str:
    """Output names, or `([names],[(output,node)...])` when outputs of outputs are used too."""
    if not children:
        return _quoted_list(names)
    inner = ",".join(f'("{k}",{_node(c.outputs, c.children)})' for k, c in children.items())
    return f"({_quoted_list(names)},[{inner}])"


# --- parsing -----------------------------------------------------------------------------------------


def _find(text: str, char: str, start: int) -> int:
    """Where `char` next occurs in `text` from `start`; `len(text)` when it does not."""
    found = text.find(char, start)
    return len(text) if found < 0 else found


class _Reader:
    """A cursor over the text; every failure names the span it happened at."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, start: int | None = None, end: int | None = None) -> NoReturn:
        start = self.pos if start is None else start
        end = start + 1 if end is None else end
        raise DerivationParseError(message, self.text, (start, min(end, max(len(self.text), start + 1))))

    def _found(self) -> str:
        if self.pos >= len(self.text):
            return "the end of the text (is the file truncated?)"
        return repr(self.text[self.pos])

    def expect(self, literal: str) -> None:
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return
        self.fail(f"expected '{literal}' but found {self._found()}")

    def string(self) -> str:
        start = self.pos
        self.expect('"')
        text, parts, i = self.text, [], self.pos
        end = len(text)
        quote = backslash = -1  # the next '"' and '\\' at or after i (`end`: none), each found once
        while True:
            if quote < i:
                quote = _find(text, '"', i)
            if backslash < i:
                backslash = _find(text, "\\", i)
            j = min(quote, backslash)
            if j == end:
                self.fail("unterminated string (is the file truncated?)", start, len(text))
            parts.append(text[i:j])
            if text[j] == '"':
                self.pos = j + 1
                return "".join(parts)
            c = text[j + 1 : j + 2]
            if c not in _UNESCAPE:
                shown = f"'\\{c}'" if c else "'\\' at the end of the text"
                self.fail(f'invalid escape {shown}: Nix writes only \\" \\\\ \\n \\r \\t', j, j + 2)
            parts.append(_UNESCAPE[c])
            i = j + 2

    def path(self) -> str:
        start = self.pos
        s = self.string()
        if not s.startswith("/"):
            self.fail(f"bad path '{s}' in derivation: store paths are absolute", start, self.pos)
        return s

    def items(self, item: Callable[[], T]) -> list[T]:
        """A bracketed, comma-separated list."""
        self.expect("[")
        result: list[T] = []
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return result
        while True:
            result.append(item())
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return result
            if not self.text.startswith(",", self.pos):
                self.fail(f"expected ',' or ']' but found {self._found()}")
            self.pos += 1

    def unique(self, pairs: list[tuple[str, T, int, int]], what: str) -> dict[str, T]:
        """Build a dict from (key, value, start, end) entries, refusing a key seen twice."""
        result: dict[str, T] = {}
        for key, value, start, end in pairs:
            if key in result:
                self.fail(f"{what} '{key}' appears twice", start, end)
            result[key] = value
        return result


def _output(r: _Reader) -> tuple[str, DerivationOutput, int, int]:
    start = r.pos
    r.expect("(")
    name = r.string()
    r.expect(",")
    path_at = r.pos
    path = r.string()
    r.expect(",")
    algo_at = r.pos
    hash_algo = r.string()
    r.expect(",")
    hash_at = r.pos
    hash_ = r.string()
    r.expect(")")
    if hash_algo:
        problem = check_hash_algo(hash_algo)
        if problem:
            r.fail(problem, algo_at, hash_at - 1)
        if hash_ not in ("", IMPURE):
            output = DerivationOutput(path, hash_algo, hash_)
            try:
                hash_ = output.content_hash.base16
            except InvalidHash as e:
                r.fail(f"bad hash of output '{name}': {e}", hash_at, r.pos - 1)
            if not path.startswith("/"):
                r.fail(f"bad path '{path}' of fixed output '{name}'", path_at, algo_at - 1)
        elif path:
            r.fail(f"output '{name}' has no fixed hash, so its path must be empty", path_at, algo_at - 1)
    elif path and not path.startswith("/"):
        r.fail(f"bad path '{path}' of output '{name}'", path_at, algo_at - 1)
    return name, DerivationOutput(path, hash_algo, hash_), start, r.pos


def _dyn_node(r: _Reader) -> DynamicOutputs:
    """`[names]` or `([names],[(output,node)...])`: Nix's `parseDerivedPathMapNode`."""
    if not r.text.startswith("(", r.pos):
        return DynamicOutputs(tuple(r.items(r.string)))
    r.expect("(")
    names = r.items(r.string)
    r.expect(",")

    def child() -> tuple[str, DynamicOutputs, int, int]:
        start = r.pos
        r.expect("(")
        key = r.string()
        r.expect(",")
        node = _dyn_node(r)
        r.expect(")")
        return key, node, start, r.pos

    children = r.unique(r.items(child), "dynamic output")
    r.expect(")")
    return DynamicOutputs(tuple(names), children)


def _input_drv(r: _Reader) -> tuple[str, DynamicOutputs, int, int]:
    start = r.pos
    r.expect("(")
    path = r.path()
    r.expect(",")
    node = _dyn_node(r)
    r.expect(")")
    return path, node, start, r.pos


def _header(r: _Reader) -> bool:
    """`Derive(` or `DrvWithVersion("xp-dyn-drv",`; True when the version allows dynamic inputs."""
    if r.text.startswith("Derive(", r.pos):
        r.pos += len("Derive(")
        return False
    if not r.text.startswith("DrvWithVersion(", r.pos):
        r.expect("Derive(")  # the usual form, named in the error
    r.expect("DrvWithVersion(")
    at = r.pos
    version = r.string()
    if version != DYNAMIC_VERSION:
        r.fail(
            f"unknown derivation ATerm version '{version}' (Nix knows only '{DYNAMIC_VERSION}')", at, r.pos
        )
    r.expect(",")
    return True


def _env_var(r: _Reader) -> tuple[str, str, int, int]:
    start = r.pos
    r.expect("(")
    key = r.string()
    r.expect(",")
    value = r.string()
    r.expect(")")
    return key, value, start, r.pos


def _located(r: _Reader, item: Callable[[], str]) -> Callable[[], tuple[str, None, int, int]]:
    def read() -> tuple[str, None, int, int]:
        start = r.pos
        return item(), None, start, r.pos

    return read


def parse(text: str) -> Derivation:
    """Parse the text of a `.drv` file; `DerivationParseError` (with a caret line) if it is malformed.

    Read files with `errors="surrogateescape"` so bytes that are not UTF-8 survive.
    """
    r = _Reader(text)
    versioned = _header(r)
    outputs = r.unique(r.items(lambda: _output(r)), "output")
    r.expect(",")
    inputs_at = r.pos
    nodes = r.unique(r.items(lambda: _input_drv(r)), "input derivation")
    dynamic = {p: n.children for p, n in nodes.items() if n.children}
    if dynamic and not versioned:
        r.fail(
            "inputs using outputs of dynamic derivations need the "
            f"'DrvWithVersion(\"{DYNAMIC_VERSION}\",' form",
            inputs_at,
            r.pos,
        )
    input_drvs = {p: n.outputs for p, n in nodes.items()}
    r.expect(",")
    input_srcs = r.unique(r.items(_located(r, r.path)), "input source")
    r.expect(",")
    system = r.string()
    r.expect(",")
    builder = r.string()
    r.expect(",")
    args = r.items(r.string)
    r.expect(",")
    env = r.unique(r.items(lambda: _env_var(r)), "environment variable")
    r.expect(")")
    if r.pos != len(text):
        r.fail("unexpected text after the end of the derivation", r.pos, len(text))
    return Derivation(outputs, input_drvs, tuple(input_srcs), system, builder, tuple(args), env, dynamic)
