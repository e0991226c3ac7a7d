"""Derivations: the model, the ATerm `.drv` text, Nix 2.8's JSON form, and the hashes that name outputs."""

from __future__ import annotations

from storekit.derivation.model import Derivation, DerivationOutput

__all__ = ["Derivation", "DerivationOutput"]
