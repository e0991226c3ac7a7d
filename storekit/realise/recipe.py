"""storekit's own recipes: a small TOML file that becomes the `.drv` Nix's `derivation` primop would make.

```toml
name = "hello"
builder = "${inputs.busybox}/busybox"          # ${inputs.NAME} or ${inputs.NAME.OUTPUT}
args = ["sh", "-c", "echo hello > $out"]
system = "x86_64-linux"                        # default: this machine's
outputs = ["out"]                              # default: just "out"

[inputs]
busybox = { path = "./busybox" }               # a local file or dir, added like `nix-store --add`
lib = { recipe = "lib.toml", outputs = ["out", "dev"] }
tool = "/opt/store/…-tool"                     # a store path (an input source)
gcc = { drv = "/opt/store/…-gcc.drv" }         # a derivation in the store (output "out" by default)

[env]
GREETING = "hello from ${inputs.lib.dev}"

[fixed-output]                                 # optional: a fixed-output derivation
hash = "sha256-…"                              # SRI, or algo:hash, or a bare hash with algo = "…"
mode = "recursive"                             # or "flat" (Nix's default)
```

The result is exactly what `derivation { name = …; builder = …; args = …; GREETING = …; }` gives in
Nix with the same inputs: every top-level attribute but `args` lands in the environment (`outputs`
only when given; `outputHash`, `outputHashAlgo`, `outputHashMode` as written), and the output paths
come from `derivation.hashing.instantiate`. `${inputs.…}` is the only interpolation, so shell
variables such as `$out` and `${out}` pass through untouched.

Parsing and the derivation are pure (`parse_recipe`, `recipe_derivation`); `instantiate_recipe` reads
files and writes the `.drv` (and any local `path` inputs) into a store.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from storekit.derivation.aterm import print_aterm
from storekit.derivation.hashing import instantiate
from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import ConfigError, StorekitError
from storekit.hashing import Hash
from storekit.store.base import Store
from storekit.storepath import FileIngestionMethod, StorePath

_REF = re.compile(r"\$\{inputs\.([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_-]+))?\}")
_TOP_KEYS = {"name", "builder", "args", "system", "outputs", "inputs", "env", "fixed-output"}
_RESERVED_ENV = {
    "name",
    "builder",
    "system",
    "outputs",
    "args",
    "outputHash",
    "outputHashAlgo",
    "outputHashMode",
}


InputKind = Literal["store", "path", "drv", "recipe"]


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One `[inputs]` entry as written: `kind` is `store`, `path`, `drv` or `recipe`."""

    kind: InputKind
    value: str
    outputs: tuple[str, ...] | None = None
    """The outputs used; by default those named in `${inputs.NAME.OUTPUT}`, else `out`."""


@dataclass(frozen=True, slots=True)
class FixedOutput:
    hash: str
    algo: str | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class Recipe:
    file: str
    name: str
    builder: str
    args: tuple[str, ...] = ()
    system: str | None = None
    outputs: tuple[str, ...] | None = None
    inputs: Mapping[str, InputSpec] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    fixed: FixedOutput | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    """An input made concrete: a store path (source), or a `.drv` with its output paths."""

    path: StorePath
    outputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_drv(self) -> bool:
        return bool(self.outputs)


# --- parsing (pure) ---------------------------------------------------------------------------------


def parse_recipe(text: str, file: str) -> Recipe:
    """Parse and check a recipe; `ConfigError` names the file and the key at fault."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(file, "", f"not valid TOML: {e}") from e
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(file, unknown[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    env = _table(data, "env", file)
    for key in env:
        if key in _RESERVED_ENV:
            raise ConfigError(file, f"env.{key}", "is set from the recipe's own keys; remove it from [env]")
    outputs = data.get("outputs")
    return Recipe(
        file=file,
        name=_string(data, "name", file, required=True),
        builder=_string(data, "builder", file, required=True),
        args=tuple(_strings(data, "args", file)),
        system=_string(data, "system", file) or None,
        outputs=None if outputs is None else tuple(_strings(data, "outputs", file)),
        inputs={k: _input(k, v, file) for k, v in _table(data, "inputs", file).items()},
        env={k: _check_str(v, f"env.{k}", file) for k, v in env.items()},
        fixed=_fixed(data, file),
    )


def _string(data: Mapping[str, Any], key: str, file: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise ConfigError(file, key, "is required")
        return ""
    return _check_str(value, key, file)


def _check_str(value: object, key: str, file: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(file, key, f"must be a string, not {type(value).__name__}")
    return value


def _strings(data: Mapping[str, Any], key: str, file: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(file, key, "must be a list of strings")
    return [_check_str(v, f"{key}[{i}]", file) for i, v in enumerate(value)]


def _table(data: Mapping[str, Any], key: str, file: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(file, key, "must be a table")
    return value


def _input(name: str, value: object, file: str) -> InputSpec:
    key = f"inputs.{name}"
    if isinstance(value, str):
        return InputSpec("store", value)
    if not isinstance(value, dict):
        raise ConfigError(file, key, "must be a store path or a table {path|drv|recipe = …}")
    kinds: list[InputKind] = [k for k in ("path", "drv", "recipe") if k in value]
    extra = sorted(set(value) - {"path", "drv", "recipe", "outputs"})
    if len(kinds) != 1 or extra:
        raise ConfigError(file, key, "needs exactly one of path, drv, recipe (and optionally outputs)")
    outputs = tuple(_strings(value, "outputs", file)) if "outputs" in value else None
    if kinds[0] == "path" and "outputs" in value:
        raise ConfigError(file, key, "a path input has no outputs")
    return InputSpec(kinds[0], _check_str(value[kinds[0]], f"{key}.{kinds[0]}", file), outputs)


def _fixed(data: Mapping[str, Any], file: str) -> FixedOutput | None:
    table = data.get("fixed-output")
    if table is None:
        return None
    if not isinstance(table, dict) or "hash" not in table:
        raise ConfigError(file, "fixed-output", "must be a table with at least 'hash'")
    extra = sorted(set(table) - {"hash", "algo", "mode"})
    if extra:
        raise ConfigError(file, f"fixed-output.{extra[0]}", "unknown key (known: hash, algo, mode)")
    mode = table.get("mode")
    if mode is not None and mode not in ("flat", "recursive"):
        raise ConfigError(file, "fixed-output.mode", "must be 'flat' or 'recursive'")
    algo = table.get("algo")
    return FixedOutput(
        _check_str(table["hash"], "fixed-output.hash", file),
        None if algo is None else _check_str(algo, "fixed-output.algo", file),
        mode,
    )


# --- the derivation (pure) -----------------------------------------------------------------------------


def recipe_derivation(recipe: Recipe, inputs: Mapping[str, Resolved], system: str) -> Derivation:
    """The derivation before output paths are filled in (give it to `derivation.hashing.instantiate`)."""
    used: dict[str, set[str]] = {}

    def expand(text: str, key: str) -> str:
        return _REF.sub(lambda m: _substitute(recipe, inputs, used, m, key), text)

    env = {k: expand(v, f"env.{k}") for k, v in recipe.env.items()}
    builder = expand(recipe.builder, "builder")
    args = tuple(expand(a, f"args[{i}]") for i, a in enumerate(recipe.args))
    env.update(name=recipe.name, builder=builder, system=recipe.system or system)
    if recipe.outputs is not None:
        env["outputs"] = " ".join(recipe.outputs)
    output_names = recipe.outputs or ("out",)
    outputs = {o: DerivationOutput() for o in output_names}
    if recipe.fixed is not None:
        outputs = _fixed_outputs(recipe, output_names, env)
    input_drvs: dict[str, set[str]] = {}
    input_srcs = []
    for name, spec in recipe.inputs.items():
        res = inputs[name]
        if res.is_drv:
            outs = set(spec.outputs or ()) | used.get(name, set()) or {"out"}
            input_drvs.setdefault(str(res.path), set()).update(outs)
        else:
            input_srcs.append(str(res.path))
    return Derivation(
        outputs=outputs,
        input_drvs={k: tuple(v) for k, v in input_drvs.items()},
        input_srcs=tuple(input_srcs),
        system=env["system"],
        builder=builder,
        args=args,
        env=env,
    )


def _substitute(
    recipe: Recipe, inputs: Mapping[str, Resolved], used: dict[str, set[str]], m: re.Match[str], key: str
) -> str:
    name, output = m.group(1), m.group(2)
    if name not in inputs:
        raise ConfigError(recipe.file, key, f"'{m.group(0)}' names no input (have: {', '.join(inputs)})")
    res = inputs[name]
    if not res.is_drv:
        if output:
            raise ConfigError(recipe.file, key, f"'{m.group(0)}': input '{name}' is a path, not a derivation")
        return str(res.path)
    output = output or "out"
    if output not in res.outputs:
        raise ConfigError(recipe.file, key, f"'{m.group(0)}': input '{name}' has no output '{output}'")
    used.setdefault(name, set()).add(output)
    return res.outputs[output]


def _fixed_outputs(
    recipe: Recipe, names: tuple[str, ...], env: dict[str, str]
) -> dict[str, DerivationOutput]:
    fixed = recipe.fixed
    assert fixed is not None
    if names != ("out",):
        raise ConfigError(recipe.file, "outputs", "a fixed-output derivation has exactly one output, 'out'")
    try:
        content_hash = Hash.parse(fixed.hash, fixed.algo)
    except StorekitError as e:
        raise ConfigError(recipe.file, "fixed-output.hash", str(e)) from e
    env["outputHash"] = fixed.hash
    if fixed.algo is not None:
        env["outputHashAlgo"] = fixed.algo
    if fixed.mode is not None:
        env["outputHashMode"] = fixed.mode
    method = FileIngestionMethod.RECURSIVE if fixed.mode == "recursive" else FileIngestionMethod.FLAT
    return {"out": DerivationOutput.fixed(method, content_hash)}


# --- instantiating into a store -------------------------------------------------------------------------


ReadDrv = Callable[[StorePath], Derivation]


def instantiate_recipe(
    store: Store, file: str, read_drv: ReadDrv, *, system: str, _seen: tuple[str, ...] = ()
) -> tuple[StorePath, Derivation]:
    """Write the `.drv` of the recipe in `file` (and of the recipes it uses) to `store`."""
    path = os.path.realpath(file)
    if path in _seen:
        raise ConfigError(file, "inputs", "recipes use each other in a cycle: " + " -> ".join((*_seen, path)))
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(file, "", f"cannot read the recipe: {e.strerror}") from e
    recipe = parse_recipe(text, file)
    resolved = {
        name: _resolve(store, recipe, name, spec, read_drv, system, (*_seen, path))
        for name, spec in recipe.inputs.items()
    }
    template = recipe_derivation(recipe, resolved, system)
    drv_path, drv = instantiate(template, store.store_dir, lambda p: read_drv(store.store_dir.parse_path(p)))
    refs = [store.store_dir.parse_path(p) for p in (*drv.input_srcs, *drv.input_drvs)]
    written = store.add_text(drv_path.name, print_aterm(drv).encode("utf-8", "surrogateescape"), refs)
    assert written == drv_path, (written, drv_path)
    return drv_path, drv


def _resolve(
    store: Store,
    recipe: Recipe,
    name: str,
    spec: InputSpec,
    read_drv: ReadDrv,
    system: str,
    seen: tuple[str, ...],
) -> Resolved:
    key = f"inputs.{name}"
    base = os.path.dirname(os.path.abspath(recipe.file))
    if spec.kind == "path":
        source = os.path.join(base, spec.value)
        if not os.path.lexists(source):
            raise ConfigError(recipe.file, key, f"'{source}' does not exist")
        return Resolved(store.add_path(source))
    if spec.kind == "recipe":
        drv_path, drv = instantiate_recipe(
            store, os.path.join(base, spec.value), read_drv, system=system, _seen=seen
        )
        return _with_outputs(recipe, key, drv_path, drv, spec.outputs)
    try:
        path = store.store_dir.parse_path(spec.value)
    except StorekitError as e:
        raise ConfigError(recipe.file, key, str(e)) from e
    if not store.is_valid_path(path):
        raise ConfigError(recipe.file, key, f"'{path}' is not valid in '{store.uri}'; add or copy it first")
    if spec.kind == "store" and not path.is_derivation:
        return Resolved(path)
    return _with_outputs(recipe, key, path, read_drv(path), spec.outputs)


def _with_outputs(
    recipe: Recipe, key: str, drv_path: StorePath, drv: Derivation, wanted: tuple[str, ...] | None
) -> Resolved:
    missing = [o for o in wanted or () if o not in drv.outputs]
    if missing:
        raise ConfigError(recipe.file, key, f"'{drv_path}' has no output(s) {', '.join(missing)}")
    return Resolved(drv_path, {o: out.path for o, out in drv.outputs.items()})
