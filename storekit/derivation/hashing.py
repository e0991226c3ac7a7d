"""The hashes that name a derivation's outputs and the `.drv` itself (Nix 2.8, libstore/derivations.cc).

An input-addressed output path is made from `hashDerivationModulo`: sha256 of the derivation's ATerm
in which every input `.drv` path is replaced by the hex of *its* hash modulo. The replacement makes the
hash depend on what the inputs build rather than on how their `.drv` files are named, and a fixed-output
input hashes only to its promised content (`fixed:out:<r:>algo:hex:<path>`), so changing how a source
is fetched does not rebuild everything downstream. Input derivations are read through a caller-given
`lookup`, which keeps this module pure; their hashes are memoised for the duration of one call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum

from storekit import nixbase32
from storekit.derivation.aterm import print_aterm
from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import InvalidDerivation
from storekit.frozen import Frozen
from storekit.hashing import Hash
from storekit.storepath import StoreDir, StorePath, output_path_name

Lookup = Callable[[str], Derivation]
"""Returns the derivation stored at a `.drv` path (e.g. read and parsed from the store)."""


_set = object.__setattr__


class Kind(Enum):
    """Nix's `DerivationType`, by the kind of its outputs (they may not be mixed)."""

    INPUT_ADDRESSED = "input-addressed"
    DEFERRED = "deferred input-addressed"
    FIXED = "fixed-output"
    FLOATING = "floating content-addressed"
    IMPURE = "impure"


def _output_kind(o: DerivationOutput) -> Kind:
    if o.is_fixed:
        return Kind.FIXED
    if o.is_impure:
        return Kind.IMPURE
    if o.is_floating:
        return Kind.FLOATING
    return Kind.INPUT_ADDRESSED if o.path else Kind.DEFERRED


def derivation_kind(drv: Derivation) -> Kind:
    """The derivation's type; `InvalidDerivation` for the combinations Nix 2.8 refuses."""
    kinds = {_output_kind(o) for o in drv.outputs.values()}
    if not kinds:
        raise InvalidDerivation(f"derivation '{drv.name}' must have at least one output")
    if len(kinds) > 1:
        shown = ", ".join(sorted(k.value for k in kinds))
        raise InvalidDerivation(f"derivation '{drv.name}' mixes output types ({shown}); Nix refuses that")
    kind = kinds.pop()
    if kind is Kind.FIXED and list(drv.outputs) != ["out"]:
        raise InvalidDerivation(
            f"fixed-output derivation '{drv.name}' must have exactly one output, named 'out' "
            f"(it has {', '.join(drv.outputs)})"
        )
    return kind


class DrvHash(Frozen):
    """Nix's `DrvHash`: one hash per output, and whether it depends on a not-yet-known output path."""

    __slots__ = ("deferred", "hashes")
    __match_args__ = ("hashes", "deferred")
    hashes: dict[str, Hash]
    deferred: bool

    def __init__(
        self,
        hashes: dict[str, Hash],
        deferred: bool,
    ) -> None:
        _set(self, "hashes", hashes)
        _set(self, "deferred", deferred)


@functools.lru_cache(maxsize=256)
def hash_placeholder(output: str) -> str:
    """What Nix puts in the env for an output whose path is not known before the build.

    Remembered: every build rewrites its outputs' placeholders (`out` for most), twice."""
    return "/" + nixbase32.encode(Hash.of(f"nix-output:{output}".encode()).digest)


def _drv_name(drv: Derivation, name: str | None) -> str:
    name = drv.name if name is None else name
    if not name:
        raise InvalidDerivation("derivation has no name: set env['name'] or pass name=")
    return name


def _fixed_path(drv: Derivation, store_dir: StoreDir, name: str) -> StorePath:
    return fixed_output_path(store_dir, name, "out", drv.outputs["out"])


def fixed_output_path(store_dir: StoreDir, drv_name: str, output: str, o: DerivationOutput) -> StorePath:
    """The path a fixed output must have: Nix's `makeFixedOutputPathFromCA` (text or flat/nar)."""
    path_name = output_path_name(drv_name, output)
    if o.ca_method == "text":
        return store_dir.make_text_path(path_name, o.content_hash)
    if o.ca_method == "git":
        raise InvalidDerivation(
            f"output '{output}' of '{drv_name}' is git-hashed, which storekit cannot address"
        )
    return store_dir.make_fixed_output_path(path_name, o.method, o.content_hash)


class ModuloHasher:
    """`hashDerivationModulo` with the memo of input derivations that Nix keeps in `drvHashes`."""

    def __init__(self, store_dir: StoreDir, lookup: Lookup) -> None:
        self.store_dir = store_dir
        self.lookup = lookup
        self._memo: dict[str, DrvHash] = {}
        # by the derivation object, which the entry keeps alive (so its id is not reused): a CA build
        # asks the same derivation's hash for its cutoff, its realisations and its dependents'
        self._by_object: dict[tuple[int, str, bool], tuple[Derivation, DrvHash]] = {}

    def path_hash(self, drv_path: str) -> DrvHash:
        """The (unmasked) hash modulo of the input derivation stored at `drv_path`."""
        found = self._memo.get(drv_path)
        if found is None:
            path = self.store_dir.parse_path(drv_path)
            if not path.is_derivation:
                raise InvalidDerivation(f"input derivation '{drv_path}' does not end in '.drv'")
            found = self.hash(self.lookup(drv_path), path.name.removesuffix(".drv"), mask_outputs=False)
            self._memo[drv_path] = found
        return found

    def hash(self, drv: Derivation, name: str, *, mask_outputs: bool) -> DrvHash:
        key = (id(drv), name, mask_outputs)
        known = self._by_object.get(key)
        if known is not None and known[0] is drv:
            return known[1]
        found = self._hash(drv, name, mask_outputs=mask_outputs)
        self._by_object[key] = (drv, found)
        return found

    def _hash(self, drv: Derivation, name: str, *, mask_outputs: bool) -> DrvHash:
        kind = derivation_kind(drv)
        if kind is Kind.FIXED:
            out = drv.outputs["out"]
            path = _fixed_path(drv, self.store_dir, name)
            fingerprint = f"fixed:out:{out.hash_algo}:{out.hash}:{path}"
            return DrvHash({"out": Hash.of(fingerprint.encode())}, deferred=False)
        if kind is Kind.IMPURE:
            return DrvHash({o: Hash.of(b"impure") for o in drv.outputs}, deferred=True)
        deferred = kind is Kind.FLOATING
        input_hashes: dict[str, str] = {}
        for input_path, wanted in drv.input_drvs.items():
            found = self.path_hash(input_path)
            deferred = deferred or found.deferred
            hexes = set()
            for output in wanted:
                if output not in found.hashes:
                    raise InvalidDerivation(
                        f"derivation '{name}' uses output '{output}' of '{input_path}', which has no such "
                        "output"
                    )
                hexes.add(found.hashes[output].base16)
            if len(hexes) > 1:
                raise InvalidDerivation(
                    f"outputs of '{input_path}' hash differently; Nix 2.8 never does that"
                )
            if hexes:
                input_hashes[input_path] = hexes.pop()
        text = print_aterm(drv, mask_outputs=mask_outputs, input_drv_hashes=input_hashes)
        h = Hash.of(text.encode("utf-8", "surrogateescape"))
        return DrvHash({o: h for o in drv.outputs}, deferred=deferred)


def hash_derivation_modulo(
    drv: Derivation,
    store_dir: StoreDir,
    lookup: Lookup,
    *,
    mask_outputs: bool = True,
    name: str | None = None,
) -> Hash:
    """Nix's `hashDerivationModulo` (the `out` hash for fixed-output derivations).

    `name` defaults to `env["name"]`; Nix takes it from the `.drv` path, which agrees for real files.
    """
    result = ModuloHasher(store_dir, lookup).hash(drv, _drv_name(drv, name), mask_outputs=mask_outputs)
    return next(iter(result.hashes.values()))


def output_paths(
    drv: Derivation,
    store_dir: StoreDir,
    lookup: Lookup,
    *,
    name: str | None = None,
    hasher: ModuloHasher | None = None,
) -> dict[str, StorePath]:
    """The paths of the outputs known before building: fixed and input-addressed ones.

    Floating content-addressed, impure and deferred outputs (and input-addressed ones that depend on
    them) get their paths only after a build, so they are absent from the result.
    """
    name = _drv_name(drv, name)
    kind = derivation_kind(drv)
    if kind is Kind.FIXED:
        return {"out": _fixed_path(drv, store_dir, name)}
    if kind not in (Kind.INPUT_ADDRESSED, Kind.DEFERRED):
        return {}
    result = (hasher or ModuloHasher(store_dir, lookup)).hash(drv, name, mask_outputs=True)
    if result.deferred:
        return {}
    return {o: store_dir.make_output_path(o, result.hashes[o], name) for o in drv.outputs}


def drv_path(drv: Derivation, store_dir: StoreDir, *, name: str | None = None) -> StorePath:
    """The store path of the `.drv` file: a text path whose references are all the inputs."""
    refs = [store_dir.parse_path(p) for p in (*drv.input_srcs, *drv.input_drvs)]
    text = print_aterm(drv).encode("utf-8", "surrogateescape")
    return store_dir.make_text_path(_drv_name(drv, name) + ".drv", Hash.of(text), refs)


def instantiate(
    drv: Derivation, store_dir: StoreDir, lookup: Lookup, *, name: str | None = None
) -> tuple[StorePath, Derivation]:
    """Fill in output paths and the env vars named after outputs, as Nix's `derivation` primop does.

    Give outputs without paths: `DerivationOutput()` for input-addressed ones,
    `DerivationOutput.fixed(method, hash)` for a fixed output, `DerivationOutput.floating(...)` for
    content-addressed ones. Every other env var (name, system, builder, outputs, ...) is the caller's.
    Returns the `.drv` path and the complete derivation.
    """
    name = _drv_name(drv, name)
    env = dict(drv.env)
    kind = derivation_kind(_blank(drv))
    if kind is Kind.FIXED:
        path = _fixed_path(drv, store_dir, name)
        env["out"] = str(path)
        done = drv.replace(outputs={"out": drv.outputs["out"].with_path(str(path))}, env=env)
    elif kind in (Kind.FLOATING, Kind.IMPURE):
        env.update({o: hash_placeholder(o) for o in drv.outputs})
        done = drv.replace(env=env)
    else:
        env.update({o: "" for o in drv.outputs})
        done = drv.replace(outputs={o: DerivationOutput() for o in drv.outputs}, env=env)
        result = ModuloHasher(store_dir, lookup).hash(done, name, mask_outputs=True)
        if not result.deferred:
            paths = {o: store_dir.make_output_path(o, result.hashes[o], name) for o in drv.outputs}
            env.update({o: str(p) for o, p in paths.items()})
            outputs = {o: DerivationOutput(str(p)) for o, p in paths.items()}
            done = drv.replace(outputs=outputs, env=env)
    return drv_path(done, store_dir, name=name), done


def _blank(drv: Derivation) -> Derivation:
    """`drv` with output paths removed, so a template with or without paths has the same kind."""
    return drv.replace(outputs={n: o.with_path("") for n, o in drv.outputs.items()})


def check(drv_path_str: str, drv: Derivation, store_dir: StoreDir, lookup: Lookup) -> list[str]:
    """What is wrong with the `.drv` at `drv_path_str`: one line per output path, env var or the
    `.drv` path itself that differs from what Nix would compute (Nix's `checkDerivationOutputs`)."""
    path = store_dir.parse_path(drv_path_str)
    if not path.is_derivation:
        raise InvalidDerivation(f"'{drv_path_str}' is not a derivation: its name does not end in '.drv'")
    name = path.name.removesuffix(".drv")
    expected = output_paths(drv, store_dir, lookup, name=name)
    problems = []
    for output, o in drv.outputs.items():
        want = expected.get(output)
        if want is None:
            continue
        if o.path != str(want):
            problems.append(f"output '{output}' is '{o.path}', should be '{want}'")
        if drv.env.get(output) != str(want):
            problems.append(f"environment variable '{output}' is '{drv.env.get(output)}', should be '{want}'")
    real = drv_path(drv, store_dir, name=name)
    if real != path:
        problems.append(f"the derivation's own path should be '{real}'")
    return problems
