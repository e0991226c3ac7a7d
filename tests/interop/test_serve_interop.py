"""storekit.wire.serve against real Nix 2.8's `nix-store --serve --write`: a build over the serve protocol.

The client side is storekit's: the handshake, `BuildDerivation` with a basic derivation and the
build options at protocol 2.7 (what Nix 2.8 speaks), and the `BuildResult` that comes back, which
must say Built and leave the output valid with the content the builder wrote.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from nixoracle import NixStore

from storekit.derivation.hashing import instantiate
from storekit.derivation.model import Derivation, DerivationOutput
from storekit.storepath import StoreDir
from storekit.wire import serve
from storekit.wire.framing import WireReader, WireWriter
from storekit.wire.values import BuildOptions, BuildStatus

pytestmark = pytest.mark.interop


def test_build_derivation_over_the_serve_protocol(nix_store: NixStore, tmp_path: Path) -> None:
    sd = StoreDir(nix_store.store_dir)
    env = {"name": "served", "system": "x86_64-linux", "builder": "/bin/sh"}
    template = Derivation({"out": DerivationOutput()}, args=("-c", "echo built over serve > $out"), env=env)
    drv_path, drv = instantiate(template, sd, lambda p: template)
    drv = Derivation(drv.outputs, {}, (), "x86_64-linux", "/bin/sh", drv.args, drv.env)

    w = WireWriter().u64(serve.SERVE_MAGIC_1).u64(serve.NIX_2_8_VERSION)
    w.u64(serve.ServeCommand.BuildDerivation)
    serve.write_basic_derivation(w, drv_path, drv)
    serve.write_build_options(w, BuildOptions(60, 120, 0, 0, False, False), serve.NIX_2_8_VERSION)
    # Nix interrupts a build when its stdin closes (MonitorFdHup): keep it open until the answer
    proc = subprocess.Popen(
        ["nix-store", "--serve", "--write", "--store", nix_store.uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=nix_store.env(),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(w.getvalue())
        proc.stdin.flush()
        r = WireReader(proc.stdout)
        version = serve.read_handshake(r)
        assert serve.negotiate(serve.NIX_2_8_VERSION, version) == serve.NIX_2_8_VERSION
        result = serve.read_build_result(r, sd, serve.NIX_2_8_VERSION)
    finally:
        proc.stdin.close()
        proc.wait(timeout=300)
        log = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
    assert result.status is BuildStatus.Built, (result, log)
    assert result.times_built == 1 and result.start_time <= result.stop_time
    out = drv.outputs["out"].path
    assert Path(out).read_text() == "built over serve\n"
    assert nix_store.text("nix-store", "-q", "--hash", out).startswith("sha256:")

    again = WireWriter()
    serve.write_basic_derivation(again, drv_path, drv)
    assert serve.read_basic_derivation(WireReader(again.getvalue()), sd) == (drv_path, drv)
