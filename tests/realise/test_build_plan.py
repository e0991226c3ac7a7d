"""The build plan (pure): what to build or substitute, in which order, looking no further than needed."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError, StoreError
from storekit.hashing import Hash
from storekit.realise.plan import Action, make_plan
from storekit.storepath import StoreDir, StorePath

SD = StoreDir("/opt/store")


class Graph:
    """Derivations by name; reads are recorded, to check that planning stays lazy."""

    def __init__(self) -> None:
        self.drvs: dict[StorePath, Derivation] = {}
        self.reads: list[str] = []
        self.valid: set[StorePath] = set()

    def add(
        self, name: str, inputs: dict[str, tuple[str, ...]] | None = None, outputs: tuple[str, ...] = ("out",)
    ) -> StorePath:
        path = SD.make_text_path(f"{name}.drv", Hash.of(name.encode()))
        outs = {
            o: DerivationOutput(str(SD.make_output_path(o, Hash.of(name.encode()), name))) for o in outputs
        }
        input_drvs = {str(self.path(n)): o for n, o in (inputs or {}).items()}
        self.drvs[path] = Derivation(outputs=outs, input_drvs=input_drvs, env={"name": name})
        return path

    def path(self, name: str) -> StorePath:
        return SD.make_text_path(f"{name}.drv", Hash.of(name.encode()))

    def out(self, name: str, output: str = "out") -> StorePath:
        return SD.parse_path(self.drvs[self.path(name)].outputs[output].path)

    def read(self, path: StorePath) -> Derivation:
        self.reads.append(path.name)
        return self.drvs[path]

    def plan(self, *roots: str, subst: Collection[StorePath] | None = None, outputs: list[str] | None = None):  # type: ignore[no-untyped-def]
        substitutable = None if subst is None else (lambda paths: set(paths) & set(subst))
        targets = [(self.path(r), outputs) for r in roots]
        return make_plan(targets, SD, self.read, self.valid.__contains__, substitutable)


def names(paths: Collection[StorePath]) -> list[str]:
    return [p.name.removesuffix(".drv") for p in paths]


def test_diamond_in_dependency_order() -> None:
    g = Graph()
    g.add("base")
    g.add("left", {"base": ("out",)})
    g.add("right", {"base": ("out",)})
    g.add("top", {"left": ("out",), "right": ("out",)})
    plan = g.plan("top")
    order = names(plan.order)
    assert order[0] == "base" and order[-1] == "top" and set(order) == {"base", "left", "right", "top"}
    assert names(plan.goals[g.path("top")].deps) == sorted(["left", "right"], key=lambda n: str(g.path(n)))
    assert set(names(plan.dependents()[g.path("base")])) == {"left", "right"}


def test_valid_outputs_stop_the_walk() -> None:
    g = Graph()
    g.add("base")
    g.add("mid", {"base": ("out",)})
    g.add("top", {"mid": ("out",)})
    g.valid.add(g.out("mid"))
    plan = g.plan("top")
    assert names(plan.order) == ["top"]
    assert plan.goals[g.path("mid")].action is Action.VALID
    assert "base.drv" not in g.reads  # never opened: mid is already there


def test_more_outputs_wanted_later_reopen_a_valid_derivation() -> None:
    g = Graph()
    g.add("lib", outputs=("out", "dev"))
    g.add("a", {"lib": ("out",)})
    g.add("b", {"lib": ("dev",)})
    g.add("top", {"a": ("out",), "b": ("out",)})
    g.valid.add(g.out("lib"))  # out is there, dev is not
    plan = g.plan("top")
    lib = plan.goals[g.path("lib")]
    assert lib.action is Action.BUILD and lib.wanted == {"out", "dev"} and lib.missing == {"dev"}
    assert names(plan.order).index("lib") < names(plan.order).index("b")


def test_substitutable_outputs_are_fetched_not_built() -> None:
    g = Graph()
    g.add("base")
    g.add("mid", {"base": ("out",)})
    g.add("top", {"mid": ("out",)})
    plan = g.plan("top", subst={g.out("mid")})
    assert plan.goals[g.path("mid")].action is Action.SUBSTITUTE
    assert names(plan.order) == ["mid", "top"]
    assert "base.drv" not in g.reads


def test_partially_substitutable_derivation_is_built() -> None:
    g = Graph()
    g.add("pair", outputs=("out", "doc"))
    plan = g.plan("pair", subst={g.out("pair")})
    assert plan.goals[g.path("pair")].action is Action.BUILD


def test_chosen_outputs_and_unknown_ones() -> None:
    g = Graph()
    g.add("pair", outputs=("out", "doc"))
    g.valid.add(g.out("pair", "doc"))
    assert g.plan("pair", outputs=["doc"]).order == ()
    with pytest.raises(BuildError, match="no output"):
        g.plan("pair", outputs=["man"])


def test_missing_input_sources() -> None:
    g = Graph()
    src = SD.make_text_path("src", Hash.of(b"src"))
    path = g.add("user")
    g.drvs[path] = Derivation(outputs=g.drvs[path].outputs, input_srcs=(str(src),), env={"name": "user"})
    with pytest.raises(StoreError, match="not valid and no substituter"):
        g.plan("user")
    assert g.plan("user", subst={src}).sources == {src}


def test_content_addressed_derivations_are_refused_clearly() -> None:
    g = Graph()
    path = g.add("ca")
    g.drvs[path] = Derivation(outputs={"out": DerivationOutput("", "r:sha256", "")}, env={"name": "ca"})
    with pytest.raises(BuildError, match="content-addressed"):
        g.plan("ca")
