"""Planning content-addressed derivations (pure): their output paths come from realisations."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pytest

from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError
from storekit.hashing import Hash
from storekit.realise.plan import Action, BuildPlan, make_plan
from storekit.storepath import FileIngestionMethod, StoreDir, StorePath

SD = StoreDir("/opt/store")


def drv_path(name: str) -> StorePath:
    return SD.make_text_path(f"{name}.drv", Hash.of(name.encode()))


def out_path(name: str) -> StorePath:
    return SD.make_fixed_output_path(name, FileIngestionMethod.RECURSIVE, Hash.of(name.encode()))


def ca(name: str, *inputs: str) -> Derivation:
    return Derivation(
        outputs={"out": DerivationOutput.floating(FileIngestionMethod.RECURSIVE, "sha256")},
        input_drvs={str(drv_path(i)): ("out",) for i in inputs},
        env={"name": name},
    )


class World:
    def __init__(self) -> None:
        self.drvs = {drv_path(n): ca(n, *i) for n, i in (("lib", ()), ("app", ("lib",)))}
        self.realised: dict[StorePath, dict[str, StorePath]] = {}
        self.valid: set[StorePath] = set()
        self.asked: list[str] = []

    def realisations(self, path: StorePath, drv: Derivation) -> Mapping[str, StorePath]:
        self.asked.append(drv.name)
        return self.realised.get(path, {})

    def plan(self, subst: Collection[StorePath] | None = None) -> BuildPlan:
        substitutable = None if subst is None else (lambda paths: set(paths) & set(subst))
        return make_plan(
            [(drv_path("app"), None)], SD, self.drvs.__getitem__, self.valid.__contains__, substitutable,
            self.realisations,
        )  # fmt: skip


def test_unrealised_ca_derivations_are_built_inputs_first() -> None:
    w = World()
    plan = w.plan()
    assert [g.name for g in plan.todo] == ["lib", "app"]
    assert all(g.action is Action.BUILD and g.outputs == {} for g in plan.todo)
    assert plan.goals[drv_path("app")].missing == {"out"}


def test_a_realised_valid_output_is_done_without_reading_inputs() -> None:
    w = World()
    w.realised[drv_path("app")] = {"out": out_path("app")}
    w.valid.add(out_path("app"))
    plan = w.plan()
    assert plan.todo == []
    assert plan.goals[drv_path("app")].outputs == {"out": out_path("app")}
    assert w.asked == ["app"]


def test_a_realisation_whose_path_is_gone_is_substituted_or_rebuilt() -> None:
    w = World()
    w.realised[drv_path("app")] = {"out": out_path("app")}
    assert [(g.name, g.action) for g in w.plan(subst={out_path("app")}).todo] == [("app", Action.SUBSTITUTE)]
    assert [g.name for g in w.plan(subst=set()).todo] == ["lib", "app"]


def test_without_realisations_a_ca_derivation_is_refused() -> None:
    w = World()
    with pytest.raises(BuildError, match="no path before building"):
        make_plan([(drv_path("app"), None)], SD, w.drvs.__getitem__, w.valid.__contains__)
