"""Realisations: where an output of a content-addressed derivation ended up (Nix's `Realisation`).

Hand-written frozen classes (`storekit.frozen`), not dataclasses: a build of content-addressed
derivations looks realisations up before anything else, and importing `dataclasses` (with inspect,
ast and dis) and generating their code cost that build's start-up more than the lookups do
(`python -m bench ca_build`, the early cutoff). The protocols carry them too (`storekit.wire`).
"""

from __future__ import annotations

from storekit.errors import InvalidValue
from storekit.frozen import Frozen
from storekit.storepath import StorePath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_set = object.__setattr__

DUMMY_DRV_HASH = "sha256:" + "0" * 64
"""What new Nix writes as the hash of a `DrvOutput` when an old peer needs one it no longer keeps."""

#: The keys of a realisation's JSON, all of them, as Nix 2.8 writes it.
FULL_JSON_KEYS = ("dependentRealisations", "id", "outPath", "signatures")


class DrvOutput(Frozen):
    """One output of one derivation: by hash modulo (`sha256:<hex>!out`) or, newer, by `.drv` path."""

    __slots__ = ("drv_hash", "drv_path", "output")
    __match_args__ = ("output", "drv_hash", "drv_path")
    output: str
    drv_hash: str
    drv_path: StorePath | None

    def __init__(self, output: str, drv_hash: str = "", drv_path: StorePath | None = None) -> None:
        _set(self, "output", output)
        _set(self, "drv_hash", drv_hash)
        _set(self, "drv_path", drv_path)

    def __str__(self) -> str:
        return f"{self.drv_hash or DUMMY_DRV_HASH}!{self.output}"

    @classmethod
    def parse(cls, text: str) -> DrvOutput:
        drv_hash, sep, output = text.rpartition("!")
        if not sep or not output:
            raise InvalidValue(f"invalid derivation output id '{text}' (expected '<hash>!<output>')")
        return cls(output, drv_hash)


class Realisation(Frozen):
    """Where an output of a (content-addressed) derivation ended up, and who vouches for it.

    `json_keys` and `json_sig_objects` remember how a legacy JSON realisation was written (old Nix:
    signatures as strings and every key; newer: signature objects; compat writers: fewer keys), so
    it is written back byte for byte. Not hashable (`dependent` is a mapping), as the dataclass was not.
    """

    __slots__ = ("dependent", "id", "json_keys", "json_sig_objects", "out_path", "signatures")
    __match_args__ = ("out_path", "signatures", "id", "dependent", "json_keys", "json_sig_objects")
    out_path: StorePath
    signatures: tuple[str, ...]
    id: DrvOutput | None
    dependent: Mapping[str, StorePath]
    json_keys: tuple[str, ...]
    json_sig_objects: bool

    def __init__(
        self,
        out_path: StorePath,
        signatures: tuple[str, ...] = (),
        id: DrvOutput | None = None,
        dependent: Mapping[str, StorePath] | None = None,
        json_keys: tuple[str, ...] = FULL_JSON_KEYS,
        json_sig_objects: bool = False,
    ) -> None:
        _set(self, "out_path", out_path)
        _set(self, "signatures", signatures)
        _set(self, "id", id)
        _set(self, "dependent", {} if dependent is None else dependent)
        _set(self, "json_keys", json_keys)
        _set(self, "json_sig_objects", json_sig_objects)
