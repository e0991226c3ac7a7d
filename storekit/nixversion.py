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

from functools import total_ordering

from storekit.errors import InvalidValue
from storekit.frozen import Frozen
from storekit.storepath import NameRule

#: What a Nix version looks like (compiled where one is parsed: `re` costs every command's start-up).
_VERSION = r"(?:nix-)?(\d+)\.(\d+)(?:\.\d+)?(?:pre\w*)?"
_set = object.__setattr__


@total_ordering
class NixVersion(Frozen):
    """A Nix release's major and minor number: a frozen value, ordered (written by hand, as
    `storekit.frozen` says why)."""

    __slots__ = ("major", "minor")
    __match_args__ = ("major", "minor")
    major: int
    minor: int

    def __init__(self, major: int, minor: int) -> None:
        _set(self, "major", major)
        _set(self, "minor", minor)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, NixVersion):
            return NotImplemented
        return (self.major, self.minor) == (other.major, other.minor)

    def __hash__(self) -> int:
        return hash((self.major, self.minor))

    def __lt__(self, other: NixVersion) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    @classmethod
    def parse(cls, text: str) -> NixVersion:
        import re

        m = re.fullmatch(_VERSION, text.strip())
        if m is None:
            raise InvalidValue(f"'{text}' is not a Nix version (expected something like 2.8 or 2.28.3)")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


LEADING_DOT_NAMES = NixVersion(2, 21)
BLAKE3 = NixVersion(2, 27)


class NixRules(Frozen):
    """What storekit accepts and writes; `STRICTEST` (the default) is accepted by every Nix."""

    __slots__ = ("version",)
    __match_args__ = ("version",)
    version: NixVersion | None

    def __init__(self, version: NixVersion | None = None) -> None:
        _set(self, "version", version)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, NixRules):
            return NotImplemented
        return self.version == other.version

    def __hash__(self) -> int:
        return hash((self.version,))

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
