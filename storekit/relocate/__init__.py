"""Relocation: moving closures between store dirs, with rewritten references and honest refusals.

`plan` decides the order and the new names (pure), `rules` holds the length rules, `rewrite` picks them
for one file and `elfstrings` applies them to ELF (pure), `stream` runs them over a NAR, `tree` over a
directory, `apply` moves a closure from one store to another.
"""

from __future__ import annotations

from storekit.relocate.apply import Relocation, relocate
from storekit.relocate.plan import Mode

__all__ = ["Mode", "Relocation", "relocate"]
