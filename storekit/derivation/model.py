"""Derivations as values: what a `.drv` file says, normalised the way Nix's C++ maps and sets order it.

Nix keeps outputs, input derivations, input sources and the environment in sorted containers, so the
order in which a caller supplies them never changes the bytes of the `.drv` (nor its store path). The
constructor therefore sorts everything once, by the *bytes* of each string (std::string order), and
the printer can trust the order it is given.

Strings are `str`; bytes that are not UTF-8 travel as surrogate escapes (`errors="surrogateescape"`),
so any `.drv` real Nix wrote survives a round trip unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from storekit.frozen import Frozen
from storekit.hashing import ALGORITHMS, Hash
from storekit.storepath import FileIngestionMethod

# Every `storekit build` parses a `.drv` before it knows whether anything needs building: no `typing`
# at run time (`V` is the type checker's; the base class below names it as a string), and the value
# classes are written by hand (`storekit.frozen`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    V = TypeVar("V")

_set = object.__setattr__

IMPURE = "impure"

CA_METHOD_PREFIXES = {"text:": "text", "git:": "git", "r:": "nar", "": "flat"}
"""The ATerm prefix of a content-addressing method (`r:sha256`, `text:sha256`) and its JSON name."""


def sort_key(s: str) -> bytes:
    """Nix orders strings bytewise; Python's code-point order differs once surrogate escapes appear."""
    return s.encode("utf-8", "surrogateescape")


class FrozenMap(Mapping[str, "V"]):
    """A read-only, hashable mapping that keeps the (sorted) order it was built with."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, V]] = ()) -> None:
        self._items: dict[str, V] = dict(items)

    @classmethod
    def sorted(cls, items: Mapping[str, V] | Iterable[tuple[str, V]]) -> FrozenMap[V]:
        pairs = items.items() if isinstance(items, Mapping) else items
        return cls(sorted(pairs, key=lambda kv: sort_key(kv[0])))

    def __getitem__(self, key: str) -> V:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._items == other._items
        return isinstance(other, Mapping) and self._items == dict(other.items())

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


class DerivationOutput(Frozen):
    """One output as the ATerm writes it: `(name, path, hashAlgo, hash)` without the name.

    The four kinds Nix 2.8 knows are told apart by which fields are empty:
    input-addressed `(path, "", "")`, fixed-output `(path, "[r:]algo", hex)`, floating
    content-addressed `("", "[r:]algo", "")`, impure `("", "[r:]algo", "impure")`, and deferred
    (input-addressed, path not known yet) `("", "", "")`.
    """

    __slots__ = ("hash", "hash_algo", "path")
    __match_args__ = ("path", "hash_algo", "hash")
    path: str
    hash_algo: str
    hash: str

    def __init__(self, path: str = "", hash_algo: str = "", hash: str = "") -> None:
        _set(self, "path", path)
        _set(self, "hash_algo", hash_algo)
        _set(self, "hash", hash)

    @classmethod
    def fixed(cls, method: FileIngestionMethod, content_hash: Hash, path: str = "") -> DerivationOutput:
        return cls(path, method.value + content_hash.algo, content_hash.base16)

    @classmethod
    def floating(cls, method: FileIngestionMethod, algo: str) -> DerivationOutput:
        return cls("", method.value + algo, "")

    @property
    def is_fixed(self) -> bool:
        return bool(self.hash_algo) and self.hash not in ("", IMPURE)

    @property
    def is_floating(self) -> bool:
        return bool(self.hash_algo) and not self.hash

    @property
    def is_impure(self) -> bool:
        return bool(self.hash_algo) and self.hash == IMPURE

    @property
    def is_input_addressed(self) -> bool:
        return not self.hash_algo and bool(self.path)

    @property
    def method(self) -> FileIngestionMethod:
        recursive = self.hash_algo.startswith(FileIngestionMethod.RECURSIVE.value)
        return FileIngestionMethod.RECURSIVE if recursive else FileIngestionMethod.FLAT

    @property
    def ca_method(self) -> str:
        """The content-addressing method as newer Nix's JSON names it: flat, nar, text or git."""
        return CA_METHOD_PREFIXES[_method_prefix(self.hash_algo)]

    @property
    def algo(self) -> str:
        """The hash algorithm without the `r:`/`text:`/`git:` prefix (`""` for input-addressed outputs)."""
        return self.hash_algo.removeprefix(_method_prefix(self.hash_algo))

    @property
    def content_hash(self) -> Hash:
        """The expected hash of a fixed output; `InvalidHash` if this output is not fixed."""
        return Hash.parse(self.hash, self.algo)

    def with_path(self, path: str) -> DerivationOutput:
        return DerivationOutput(path, self.hash_algo, self.hash)


def _method_prefix(hash_algo: str) -> str:
    return next(p for p in CA_METHOD_PREFIXES if hash_algo.startswith(p))


_NOTHING: FrozenMap[Any] = FrozenMap()  # every default mapping: empty, and read-only


class DynamicOutputs(Frozen):
    """The outputs used of an output that is itself a derivation (Nix's experimental dynamic derivations).

    `outputs` are the names used of the derivation that output `name` of the input produces;
    `children` go one level deeper. Nix's `DerivedPathMap<StringSet>::ChildNode`.
    """

    __slots__ = ("children", "outputs")
    __match_args__ = ("outputs", "children")
    outputs: tuple[str, ...]
    children: Mapping[str, DynamicOutputs]

    def __init__(
        self,
        outputs: Iterable[str] = (),
        children: Mapping[str, DynamicOutputs] = _NOTHING,
    ) -> None:
        _set(self, "outputs", tuple(sorted(set(outputs), key=sort_key)))
        _set(self, "children", FrozenMap.sorted(children))


def _input_drvs(items: Mapping[str, Iterable[str]]) -> FrozenMap[tuple[str, ...]]:
    return FrozenMap.sorted({p: tuple(sorted(set(outs), key=sort_key)) for p, outs in items.items()})


class Derivation(Frozen):
    """A store derivation: what to build (builder, args, env, system) from what (inputs), producing what.

    Build it from plain dicts, lists and tuples; it sorts and freezes them. `input_drvs` maps each input
    `.drv` path to the names of the outputs used from it. `drv.replace(env=...)` makes a changed copy.
    """

    __slots__ = ("args", "builder", "dynamic_outputs", "env", "input_drvs", "input_srcs", "outputs", "system")
    __match_args__ = (
        "outputs", "input_drvs", "input_srcs", "system", "builder", "args", "env", "dynamic_outputs"
    )  # fmt: skip
    outputs: Mapping[str, DerivationOutput]
    input_drvs: Mapping[str, tuple[str, ...]]
    input_srcs: tuple[str, ...]
    system: str
    builder: str
    args: tuple[str, ...]
    env: Mapping[str, str]
    dynamic_outputs: Mapping[str, Mapping[str, DynamicOutputs]]
    """Per input `.drv` path, the outputs used of its outputs that are derivations (rare, experimental)."""

    def __init__(
        self,
        outputs: Mapping[str, DerivationOutput],
        input_drvs: Mapping[str, Iterable[str]] = _NOTHING,
        input_srcs: Iterable[str] = (),
        system: str = "",
        builder: str = "",
        args: Iterable[str] = (),
        env: Mapping[str, str] = _NOTHING,
        dynamic_outputs: Mapping[str, Mapping[str, DynamicOutputs]] = _NOTHING,
    ) -> None:
        _set(self, "outputs", FrozenMap.sorted(outputs))
        _set(self, "input_drvs", _input_drvs(input_drvs))
        _set(self, "input_srcs", tuple(sorted(set(input_srcs), key=sort_key)))
        _set(self, "system", system)
        _set(self, "builder", builder)
        _set(self, "args", tuple(args))
        _set(self, "env", FrozenMap.sorted(env))
        dynamic = {p: FrozenMap.sorted(m) for p, m in dynamic_outputs.items() if m}
        _set(self, "dynamic_outputs", FrozenMap.sorted(dynamic))

    @property
    def name(self) -> str:
        """The derivation's name, from `env["name"]` (the `.drv` path carries it too, plus `.drv`)."""
        return self.env.get("name", "")

    @property
    def is_fixed_output(self) -> bool:
        """Exactly one output, `out`, with a fixed content hash: Nix's `DerivationType::isFixed`."""
        return len(self.outputs) == 1 and "out" in self.outputs and self.outputs["out"].is_fixed


def check_hash_algo(hash_algo: str) -> str | None:
    """Return why `hash_algo` (`[r:|text:|git:]algo`) names no known algorithm, or None when it is fine."""
    algo = hash_algo.removeprefix(_method_prefix(hash_algo))
    if algo not in ALGORITHMS:
        return f"unknown hash algorithm '{algo}' (known: {', '.join(ALGORITHMS)})"
    return None
