"""Helpers shared by the build tests: stores under odd prefixes, busybox recipes, the storekit CLI.

Builders are Debian's static busybox, added to the store as a source path (so it is part of each
build's closure, never a host path); derivations are written with storekit's recipes, whose `.drv`
output is checked against `nix-instantiate` in tests/interop/test_build_interop.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from storekit.realise.driver import derivation_reader
from storekit.realise.plan import Goal, make_plan
from storekit.realise.recipe import instantiate_recipe
from storekit.realise.runner import host_system
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for
from storekit.storepath import StorePath

REPO = Path(__file__).parent.parent
BUSYBOX = "/bin/busybox"


def open_store(root: Path, store_dir: str | None = None) -> LocalStore:
    """A store whose files live under `root`; its logical store dir defaults to `root/store`.

    With `store_dir` (e.g. a path under /opt that does not exist on this machine), it is a `real=`
    store: builds must show the files at `store_dir` without creating anything there.
    """
    logical = store_dir or str(root / "store")
    spec = local_spec_for(
        logical,
        state_dir=str(root / "var" / "nix"),
        log_dir=str(root / "var" / "log" / "nix"),
        real_dir=str(root / "store"),
    )
    return LocalStore(spec)


def absent_store_dir() -> str:
    """A store dir that does not exist on this machine (like /opt/store on a fresh one)."""
    path = f"/opt/storekit-test-{uuid.uuid4().hex[:12]}/store"
    assert not os.path.exists(os.path.dirname(path))
    return path


def busybox_dir(tmp: Path) -> Path:
    d = tmp / "bbdir"
    if not d.exists():
        d.mkdir()
        shutil.copy(BUSYBOX, d / "busybox")
    return d


def write_recipe(
    tmp: Path,
    name: str,
    script: str,
    *,
    inputs: dict[str, str] | None = None,
    outputs: list[str] | None = None,
    fixed: tuple[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Path:
    """A recipe running `sh -e -c script` with busybox; `inputs` maps names to other recipe files."""
    busybox_dir(tmp)
    lines = [
        f'name = "{name}"',
        'builder = "${inputs.bb}/busybox"',
        f"args = ['sh', '-e', '-c', '''{script}''']",
    ]
    if outputs is not None:
        lines.append("outputs = [" + ", ".join(f'"{o}"' for o in outputs) + "]")
    lines += ["[inputs]", 'bb = { path = "bbdir" }']
    for key, recipe in (inputs or {}).items():
        lines.append(f'{key} = {{ recipe = "{recipe}" }}')
    if env:
        lines.append("[env]")
        lines += [f"{k} = '''{v}'''" for k, v in env.items()]
    if fixed is not None:
        lines += ["[fixed-output]", f'hash = "{fixed[0]}"', f'mode = "{fixed[1]}"']
    file = tmp / f"{name}.toml"
    file.write_text("\n".join(lines) + "\n")
    return file


def instantiate(store: LocalStore, recipe: Path) -> StorePath:
    return instantiate_recipe(store, str(recipe), derivation_reader(store), system=host_system())[0]


def goals(store: LocalStore, drv: StorePath) -> list[Goal]:
    """The goals to build for `drv`, inputs first."""
    return make_plan([(drv, None)], store.store_dir, derivation_reader(store), store.is_valid_path).todo


def storekit(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`storekit ARGS` in `cwd`, by default a directory of its own: `build` leaves `result` links
    (GC roots) where it runs, and they must not land in the checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory(prefix="storekit-cwd-") as own:
        proc = subprocess.run(
            [sys.executable, "-m", "storekit", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=cwd or own,
        )
    if check and proc.returncode != 0:
        raise AssertionError(f"storekit {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
