"""Targets whose wanted outputs are all valid already: what `storekit build` answers without building.

Nix's `nix-store --realise` of a built `.drv` reads the file, sees the outputs valid and is done; so
is `storekit build` (`valid_outputs`), before it imports the planner, the scheduler, the sandbox and
the builder, which cost several times what the answer does. Anything else (an output missing, one
whose path is known only once built, an output name the derivation lacks) gets None and the whole
build workflow (`storekit.realise.driver`), which says what to do or what is wrong.

This module and what it imports are on the start-up path of every `storekit build`
(tests/cli/test_cli_fast_imports.py): keep it small.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from storekit.derivation.fs import read_derivation
from storekit.errors import PathNotValid
from storekit.storepath import StorePath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from storekit.derivation.model import Derivation
    from storekit.store.local import LocalStore

Target = tuple[StorePath, Collection[str] | None]
"""A `.drv` path and the outputs wanted from it (None: all)."""
Done = tuple[StorePath, dict[str, str]]
"""A target that is done: its `.drv` and {output name: output path} for the outputs wanted, by name."""


def derivation_reader(store: LocalStore) -> Callable[[StorePath], Derivation]:
    """Read `.drv` files that are valid in `store` (from its real dir)."""

    def read(drv_path: StorePath) -> Derivation:
        if not store.is_valid_path(drv_path):
            raise PathNotValid(str(drv_path), store.uri)
        return read_derivation(store.real_path(drv_path))

    return read


def valid_outputs(store: LocalStore, targets: Sequence[Target]) -> list[Done] | None:
    """Each target with its wanted outputs, if all of them are valid in `store`; else None.

    A derivation's outputs are looked up in one query (`LocalStore.valid_among`) after reading
    every `.drv`; a `.drv` that is not valid or does not parse raises as the build would.
    """
    read = derivation_reader(store)
    done: list[Done] = []
    for drv_path, wanted in targets:
        if not drv_path.is_derivation:
            return None
        outputs = read(drv_path).outputs
        names = sorted(outputs if wanted is None else set(wanted))
        if not all(name in outputs and outputs[name].path for name in names):
            return None  # unknown to the derivation, or content-addressed: the planner says
        done.append((drv_path, {name: outputs[name].path for name in names}))
    parse = store.store_dir.parse_path
    paths = {parse(path) for _, outs in done for path in outs.values()}
    return done if len(store.valid_among(paths)) == len(paths) else None
