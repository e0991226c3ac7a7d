"""Impure derivations (`__impure = true`), which storekit refuses, and why.

In Nix 2.8 they are an experimental feature (`impure-derivations`, which needs `ca-derivations` too):
an output with no path and no hash known in advance, built again on every use, with the network and
the caller's environment like a fixed-output derivation but without a hash to check its result
against. That is the one kind whose result storekit cannot hold to anything: neither the inputs
(input-addressed), nor a promised hash (fixed-output), nor the content at least being registered
under its own hash and reused (content-addressed). Building it would give a store path whose bytes
are whatever the network said that time, so storekit refuses it, with this explanation, before planning
anything else.
"""

from __future__ import annotations

from storekit.derivation.model import Derivation
from storekit.errors import BuildError
from storekit.storepath import StorePath

REASON = (
    "it is an impure derivation (__impure), an experimental feature of Nix 2.8 "
    "(experimental-features = impure-derivations ca-derivations); storekit does not build it: its "
    "output is rebuilt on every use, with network access, and no hash holds its result to anything"
)


def refuse_impure(drv_path: StorePath, drv: Derivation) -> None:
    """`BuildError` saying why, when `drv` has an impure output."""
    if any(out.is_impure for out in drv.outputs.values()):
        raise BuildError(str(drv_path), REASON)
