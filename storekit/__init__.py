"""storekit: Nix-style stores under any prefix, compatible with real Nix byte for byte."""

from __future__ import annotations

__version__ = "0.1.0"
