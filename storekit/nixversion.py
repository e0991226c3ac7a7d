"""Which Nix storekit behaves as, where Nix versions disagree: the rules, as values.

The user names a Nix version (`nix-version` in the config file, `$STOREKIT_NIX_VERSION`; read by the
CLI, never here). Without one storekit follows the strictest rule every supported version accepts,
so what it writes is read by all of them. Rules that differ:

- store path names starting with `.`: Nix <= 2.3 refused them all; Nix 2.4-2.20 (2.8 included)
  accept every name, even `.` and `..`; Nix >= 2.21 accepts names starting with `.` but refuses
  `.`, `..` and names whose first dash-separated part is one of them. storekit refuses those in
  every mode (they are path components that leave the store) and names starting with `.` unless
  told to behave as Nix >= 2.21. The pure core keeps Nix 2.8's rule (`NameRule.NIX_2_8`) so it
  reads whatever Nix 2.8 wrote; the CLI and the stores it opens apply these rules.
- BLAKE3 hashes (`blake3-…`, `fixed:r:blake3:…`): Nix >= 2.27 accepts them; a store behaving as an
  older Nix refuses them, since that Nix could not read what it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storekit.errors import InvalidValue
from storekit.storepath import NameRule

_VERSION = re.compile(r"(?:nix-)?(\d+)\.(\d+)(?:\.\d+)?(?:pre\w*)?")


@dataclass(frozen=True, slots=True, order=True)
class NixVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> NixVersion:
        m = _VERSION.fullmatch(text.strip())
        if m is None:
            raise InvalidValue(f"'{text}' is not a Nix version (expected something like 2.8 or 2.28.3)")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


LEADING_DOT_NAMES = NixVersion(2, 21)
BLAKE3 = NixVersion(2, 27)


@dataclass(frozen=True, slots=True)
class NixRules:
    """What storekit accepts and writes; `STRICTEST` (the default) is accepted by every Nix."""

    version: NixVersion | None = None

    @property
    def name_rule(self) -> NameRule:
        leading_dot = self.version is not None and self.version >= LEADING_DOT_NAMES
        return NameRule.NIX_2_21 if leading_dot else NameRule.STRICT

    @property
    def blake3(self) -> bool:
        return self.version is not None and self.version >= BLAKE3

    def describe(self) -> str:
        return f"Nix {self.version}" if self.version is not None else "the default (every Nix)"


STRICTEST = NixRules()


def rules_for(text: str | None) -> NixRules:
    """The rules of the Nix version the user named, or the strictest ones when none is named."""
    return STRICTEST if not text else NixRules(NixVersion.parse(text))
