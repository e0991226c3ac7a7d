"""Resolving a derivation whose inputs are content-addressed (Nix 2.8's `Derivation::tryResolve`).

Before a content-addressed input is built nobody knows its output path, so a derivation using it
refers to it through a *downstream placeholder* (`/` + nix-base32 of sha256 of
`nix-upstream-output:<drv hash part>:<output path name>`), and its own outputs are floating (CA) or
deferred (input-addressed, path unknown). Once the inputs are realised, the resolved derivation
replaces each placeholder (in the builder, args, env names and values) by the real path, moves the
realised paths to the input sources, drops the input derivations, and gives each deferred output the
input-addressed path of the resolved derivation. Two derivations that resolve to the same one share
its build: that is the early cutoff.

Pure: realised input paths come from the caller.
"""

from __future__ import annotations

from collections.abc import Mapping

from storekit import nixbase32
from storekit.derivation.hashing import Kind, ModuloHasher, derivation_kind
from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError
from storekit.hashing import Hash
from storekit.realise.impure import REASON
from storekit.storepath import StorePath, output_path_name

InputOutputs = Mapping[tuple[str, str], StorePath]
"""(input `.drv` path, output name) -> the realised output path."""


def downstream_placeholder(drv_path: StorePath, output: str) -> str:
    """What a derivation's text says in place of the not-yet-known path of an input's output."""
    drv_name = drv_path.name.removesuffix(".drv")
    clear = f"nix-upstream-output:{drv_path.hash_part}:{output_path_name(drv_name, output)}"
    return "/" + nixbase32.encode(Hash.of(clear.encode()).digest)


def needs_resolution(drv: Derivation) -> bool:
    """Whether output paths are unknown until the inputs are built (floating CA or deferred)."""
    kind = derivation_kind(drv)
    if kind is Kind.IMPURE:
        raise BuildError(drv.name, REASON)  # planning refuses them first (refuse_impure): one wording
    return kind in (Kind.FLOATING, Kind.DEFERRED)


def rewrite_strings(text: str, rewrites: Mapping[str, str]) -> str:
    """Nix's `rewriteStrings`: each rewrite in turn, every occurrence."""
    for old, new in rewrites.items():
        text = text.replace(old, new)
    return text


def rewrite_derivation(drv: Derivation, rewrites: Mapping[str, str]) -> Derivation:
    """Builder, args and env (names and values) with `rewrites` applied; outputs untouched."""
    if not rewrites:
        return drv
    env = {rewrite_strings(k, rewrites): rewrite_strings(v, rewrites) for k, v in drv.env.items()}
    return drv.replace(
        builder=rewrite_strings(drv.builder, rewrites),
        args=tuple(rewrite_strings(a, rewrites) for a in drv.args),
        env=env,
    )


def resolve(drv: Derivation, inputs: InputOutputs, hasher: ModuloHasher) -> Derivation:
    """The resolved derivation: no input derivations, placeholders replaced, deferred outputs given paths."""
    store_dir = hasher.store_dir
    rewrites: dict[str, str] = {}
    srcs = set(drv.input_srcs)
    for input_drv, used in drv.input_drvs.items():
        for output in used:
            path = inputs.get((input_drv, output))
            if path is None:
                raise BuildError(drv.name, f"output '{output}' of input '{input_drv}' is not realised")
            rewrites[downstream_placeholder(store_dir.parse_path(input_drv), output)] = str(path)
            srcs.add(str(path))
    resolved = rewrite_derivation(drv, rewrites).replace(input_drvs={}, input_srcs=tuple(srcs))
    deferred = [n for n, o in resolved.outputs.items() if not o.path and not o.hash_algo]
    if not deferred:
        return resolved
    modulo = hasher.hash(resolved, drv.name, mask_outputs=True)
    env = dict(resolved.env)
    outputs = dict(resolved.outputs)
    for name in deferred:
        path = store_dir.make_output_path(name, modulo.hashes[name], drv.name)
        env[name] = str(path)
        outputs[name] = DerivationOutput(str(path))
    return resolved.replace(outputs=outputs, env=env)
