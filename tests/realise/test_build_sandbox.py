"""The sandbox: the bwrap command line it makes (pure), and real builds trying to get out of it.

What a builder *should* see is compared with real Nix's sandbox in tests/interop/test_build_interop.py;
here builds try what they must not do: read host files and store paths outside their closure, reach a
server on 127.0.0.1, write anywhere but their outputs; and the same sandbox is set up by an
unprivileged user.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_fixtures import BUSYBOX, goals, instantiate, open_store, write_recipe

from storekit.derivation.hashing import hash_placeholder
from storekit.derivation.model import Derivation, DerivationOutput
from storekit.errors import BuildError, StorekitError
from storekit.hashing import Hash
from storekit.realise import trampoline
from storekit.realise.input_copies import MAX_COPY, place_inputs
from storekit.realise.runner import BuildOptions, build_derivation
from storekit.realise.sandbox import SandboxPath, SandboxSpec, builder_command, builder_env, bwrap_args
from storekit.storepath import FileIngestionMethod

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def drv(fixed: bool = False, **env: str) -> Derivation:
    out = DerivationOutput("/s/abc-x", "sha256", "00" * 32) if fixed else DerivationOutput("/s/abc-x")
    return Derivation(
        outputs={"out": out},
        builder="/s/bb-busybox/busybox",
        args=("sh", "-c", "true"),
        env={"name": "x", "out": "/s/abc-x", **env},
    )


def spec(**kw: object) -> SandboxSpec:
    base: dict[str, object] = dict(
        command=("/s/bb/busybox", "sh"),
        env={"b": "2", "a": "1"},
        store_dir="/opt/store",
        store_scratch="/host/stage/store",
        build_dir="/host/build",
        etc_fds={"passwd": 7, "hosts": 8},
        inputs=(("/real/aaa-in", "/opt/store/aaa-in"),),
    )
    base.update(kw)
    return SandboxSpec(**base)  # type: ignore[arg-type]


# --- the command line (pure) --------------------------------------------------------------------------


def pairs(args: list[str], flag: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == flag]


def test_only_fixed_output_builds_keep_the_network() -> None:
    """Every build has its own network namespace (never the host's: its abstract unix sockets reach
    every local process); a fixed-output one is released by storekit once pasta has set it up."""
    assert "--unshare-net" in bwrap_args(spec()) and "--block-fd" not in bwrap_args(spec())
    args = bwrap_args(spec(network=True, sync_fds=(5, 6)))
    assert "--unshare-net" in args
    at = args.index("--info-fd")
    assert args[at : at + 4] == ["--info-fd", "5", "--block-fd", "6"]
    assert ("/etc/resolv.conf", "/etc/resolv.conf") in pairs(args, "--ro-bind-try")
    assert ("8", "/etc/hosts") in pairs(bwrap_args(spec()), "--file")


def test_inputs_are_read_only_at_their_logical_paths_inside_the_writable_store_dir() -> None:
    args = bwrap_args(spec())
    assert pairs(args, "--bind")[0] == ("/host/stage/store", "/opt/store")
    assert ("/real/aaa-in", "/opt/store/aaa-in") in pairs(args, "--ro-bind")
    # the store dir is mounted before the inputs inside it, and / is made read-only after all mounts
    assert args.index("/opt/store") < args.index("/opt/store/aaa-in") < args.index("--remount-ro")
    for ns in ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"):
        assert ns in args


def test_environment_is_cleared_then_set_in_nix_order() -> None:
    args = bwrap_args(spec())
    assert args.index("--clearenv") < args.index("--setenv")
    assert pairs(args, "--setenv") == [("a", "1"), ("b", "2")]


def test_sandbox_paths() -> None:
    assert SandboxPath.parse("/bin/sh=/usr/bin/busybox") == SandboxPath("/bin/sh", "/usr/bin/busybox")
    assert SandboxPath.parse("/etc/ssl?") == SandboxPath("/etc/ssl", "/etc/ssl", optional=True)
    with pytest.raises(StorekitError, match="absolute"):
        SandboxPath.parse("bin/sh")
    args = bwrap_args(spec(sandbox_paths=(SandboxPath.parse("/bin/sh=/host/busybox"),)))
    assert ("/host/busybox", "/bin/sh") in pairs(args, "--ro-bind")


def test_builder_env_like_nix_init_env() -> None:
    env = builder_env(drv(PATH="/mine", TMPDIR="/nope"), store_dir="/s", cores=3).env
    assert env["PATH"] == "/mine"  # the derivation's env overrides the defaults set before it
    assert env["TMPDIR"] == "/build"  # ... but not those set after it
    assert env["HOME"] == "/homeless-shelter" and env["NIX_STORE"] == "/s" and env["NIX_BUILD_CORES"] == "3"
    assert "NIX_OUTPUT_CHECKED" not in env


def test_pass_as_file_and_impure_env_vars() -> None:
    d = drv(text="big", passAsFile="text", impureEnvVars="http_proxy")
    benv = builder_env(d, store_dir="/s", cores=1, host_env={"http_proxy": "p"})
    (name,) = benv.files
    assert benv.files[name] == "big" and benv.env["textPath"] == f"/build/{name}" and "text" not in benv.env
    assert "http_proxy" not in benv.env  # only fixed-output derivations get impure variables
    fod = builder_env(drv(fixed=True, impureEnvVars="http_proxy"), store_dir="/s", cores=1, host_env={})
    assert fod.env["http_proxy"] == "" and fod.env["NIX_OUTPUT_CHECKED"] == "1"


def test_structured_attrs_env_holds_no_attribute() -> None:
    """With __json, attributes reach the builder only through .attrs.json/.attrs.sh (Nix's initTmpDir)."""
    d = drv(__json='{"greeting": "hi", "impureEnvVars": ["http_proxy"]}', fixed=True, greeting="hi")
    env = builder_env(d, store_dir="/s", cores=1, host_env={"http_proxy": "p"}).env
    assert "greeting" not in env and "__json" not in env and "name" not in env
    assert env["http_proxy"] == "p"  # impureEnvVars is read from the JSON
    assert env["NIX_ATTRS_JSON_FILE"] == "/build/.attrs.json"
    assert env["NIX_ATTRS_SH_FILE"] == "/build/.attrs.sh"
    with pytest.raises(BuildError, match="__json"):
        builder_env(drv(__json="[1]"), store_dir="/s", cores=1)


def test_trampoline_gives_argv0_the_builder_base_name(tmp_path: Path) -> None:
    program = trampoline.program("x86_64")
    assert program is not None
    exe = tmp_path / "trampoline"
    exe.write_bytes(program)
    exe.chmod(0o755)
    run = subprocess.run(
        [str(exe), BUSYBOX, "busybox", "sh", "-c", 'echo "$0"; ls /proc/self/fd'],
        capture_output=True,
        text=True,
        pass_fds=(os.open(BUSYBOX, os.O_RDONLY),),
        check=True,
    )
    assert run.stdout.split()[0] == "sh"  # busybox picked its applet from argv[0] = "busybox"
    assert run.stdout.split()[1:] == ["0", "1", "2", "3"]  # the inherited fd was closed (3 is ls's)
    missing = subprocess.run([str(exe), "/nonexistent", "x"], capture_output=True, check=False)
    assert missing.returncode == 127 and missing.stderr == trampoline.MESSAGE


def test_builder_command() -> None:
    assert builder_command(drv(), None) == ("/s/bb-busybox/busybox", "sh", "-c", "true")
    assert builder_command(drv(), "/proc/self/fd/5")[:3] == (
        "/proc/self/fd/5",
        "/s/bb-busybox/busybox",
        "busybox",
    )


# --- escapes (real builds) ------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 serving b'fetched\\n'; the list records the requests it got."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"fetched\n")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", hits
    httpd.shutdown()
    httpd.server_close()


def build_recipe(tmp_path: Path, recipe: Path, **options: object) -> list[str]:
    """Build a recipe's closure in a fresh store; returns the output paths of the last goal."""
    with open_store(tmp_path / "s") as store:
        result = None
        for goal in goals(store, instantiate(store, recipe)):
            result = build_derivation(store, goal, BuildOptions(**options))  # type: ignore[arg-type]
        assert result is not None
        return [store.real_path(p) for p in result.outputs.values()]


def test_host_files_and_undeclared_store_paths_are_invisible(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret\n")
    with open_store(tmp_path / "s") as store:
        other = store.add_path(str(secret))  # valid in the store, but not an input
    script = f"""
      mkdir $out
      for f in /etc/hostname /etc/shadow {secret} {other} /root /home /usr/bin; do
        if $builder test -e $f; then echo "$f" >> $out/seen; fi
      done
      $builder ls $NIX_STORE > $out/store
    """
    (out,) = build_recipe(tmp_path, write_recipe(tmp_path, "peek", script))
    assert not os.path.exists(f"{out}/seen"), Path(f"{out}/seen").read_text()
    store_listing = Path(out, "store").read_text().split()
    assert all(n.endswith(("-bbdir", "-peek")) for n in store_listing), store_listing


def test_writes_outside_the_outputs_go_nowhere(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    script = f"""
      $builder mkdir -p {victim} && echo pwned > {victim}/file || true
      echo pwned > $NIX_STORE/stray || true
      echo pwned > $builder || true
      echo pwned > /stray || true
      echo pwned > /build/../stray || true
      echo pwned > /tmp/stray || true
      echo pwned > /etc/passwd || true
      $builder chmod u+w /etc/passwd || true
      echo pwned >> /etc/passwd || true
      $builder rm -f /etc/hosts || true
      echo ok > $out
      $builder cat /etc/passwd /etc/hosts >> $out
    """
    (out,) = build_recipe(tmp_path, write_recipe(tmp_path, "scribble", script))
    text = Path(out).read_text()
    assert text.startswith("ok\n") and "nixbld" in text and "localhost" in text and "pwned" not in text
    assert list(victim.iterdir()) == []
    assert not (tmp_path / "s" / "store" / "stray").exists()
    assert Path(BUSYBOX).read_bytes()[:4] == b"\x7fELF"
    with open_store(tmp_path / "s") as store:
        bb = next(p for p in store.query_all_valid_paths() if p.name == "bbdir")
        assert (Path(store.real_path(bb)) / "busybox").read_bytes() == Path(BUSYBOX).read_bytes()


def test_no_network_for_ordinary_builds(tmp_path: Path, server: tuple[str, list[str]]) -> None:
    url, hits = server
    script = f"if $builder wget -q -T 2 -O $out {url}; then echo reached; exit 1; fi; echo blocked > $out"
    (out,) = build_recipe(tmp_path, write_recipe(tmp_path, "offline", script))
    assert Path(out).read_text() == "blocked\n"
    assert hits == []


def test_fixed_output_builds_keep_the_network(tmp_path: Path, server: tuple[str, list[str]]) -> None:
    url, hits = server
    expected = Hash.of(b"fetched\n").sri
    recipe = write_recipe(tmp_path, "fetch", f"$builder wget -q -O $out {url}", fixed=(expected, "flat"))
    (out,) = build_recipe(tmp_path, recipe)
    assert Path(out).read_bytes() == b"fetched\n"
    assert hits == ["/"]
    with open_store(tmp_path / "s") as store:
        info = store.query_path_info(store.parse_path(out))  # here the real dir is the store dir
        assert info.ca == "fixed:sha256:" + Hash.of(b"fetched\n").nix32
        assert info.path == store.store_dir.make_fixed_output_path(
            "fetch", FileIngestionMethod.FLAT, Hash.of(b"fetched\n")
        )


def test_sandbox_works_without_root(tmp_path: Path) -> None:
    """The very command line storekit makes, run by an unprivileged user (uid 65534) via setpriv."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root to drop to an unprivileged user with setpriv")
    base = Path(os.path.realpath("/tmp")) / f"storekit-rootless-{os.getpid()}"
    try:
        for d in ("real/aaa-bb", "stage", "build"):
            (base / d).mkdir(parents=True)
        shutil.copy(BUSYBOX, base / "real/aaa-bb/busybox")
        for root, dirs, files in os.walk(base):
            for n in [root, *(os.path.join(root, f) for f in dirs + files)]:
                os.chown(n, 65534, 65534)
        base.chmod(0o755)
        passwd = os.memfd_create("passwd", 0)
        os.write(passwd, b"nixbld:x:1000:100::/build:/noshell\n")
        os.lseek(passwd, 0, os.SEEK_SET)
        sandbox = SandboxSpec(
            command=("/opt/nowhere/store/aaa-bb/busybox", "sh", "-c", "id -un; echo built > $out"),
            env={"out": "/opt/nowhere/store/bbb-out"},
            store_dir="/opt/nowhere/store",
            store_scratch=str(base / "stage"),
            build_dir=str(base / "build"),
            etc_fds={"passwd": passwd},
            inputs=((str(base / "real/aaa-bb"), "/opt/nowhere/store/aaa-bb"),),
        )
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bwrap", *bwrap_args(sandbox)]
        run = subprocess.run(
            [*argv, "--", *sandbox.command], capture_output=True, text=True, pass_fds=(passwd,), check=False
        )
        os.close(passwd)
        assert run.returncode == 0, run.stderr
        assert run.stdout == "nixbld\n"  # uid 1000, named by the /etc/passwd given as data
        assert (base / "stage/bbb-out").read_text() == "built\n"
        assert (base / "stage/bbb-out").stat().st_uid == 65534
        assert not os.path.exists("/opt/nowhere")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_output_placeholders_rewritten_in_env_args_and_files() -> None:
    """Nix's inputRewrites: `placeholder "out"` in the env, the args and passAsFile files is the path."""
    ph = hash_placeholder("out")
    d = drv(prefix=f"{ph}/share", text=f"at {ph}", passAsFile="text")
    d = Derivation(outputs=d.outputs, builder=d.builder, args=("sh", "-c", f"echo {ph}"), env=d.env)
    benv = builder_env(d, store_dir="/s", cores=1)
    assert benv.env["prefix"] == "/s/abc-x/share" and list(benv.files.values()) == ["at /s/abc-x"]
    assert builder_command(d, None)[-1] == "echo /s/abc-x"


# --- inputs copied rather than mounted ------------------------------------------------------------------


def test_small_files_and_symlinks_are_placed_the_rest_mounted(tmp_path: Path) -> None:
    real, scratch = tmp_path / "real", tmp_path / "scratch"
    real.mkdir()
    scratch.mkdir()
    (real / "aaa-small").write_bytes(b"small\n")
    (real / "bbb-tool").write_bytes(b"#!/bin/sh\n")
    (real / "bbb-tool").chmod(0o555)
    (real / "ccc-big").write_bytes(b"x" * (MAX_COPY + 1))
    (real / "ddd-dir").mkdir()
    (real / "eee-link").symlink_to("/opt/store/aaa-small")
    (scratch / "aaa-small").write_text("left by a sandbox that could not be set up\n")
    inputs = [
        (str(real / n), f"/opt/store/{n}")
        for n in ("aaa-small", "bbb-tool", "ccc-big", "ddd-dir", "eee-link")
    ]

    mounts = place_inputs(str(scratch), inputs)

    assert mounts == (
        (str(real / "ccc-big"), "/opt/store/ccc-big"),
        (str(real / "ddd-dir"), "/opt/store/ddd-dir"),
    )
    small, tool = (scratch / "aaa-small").stat(), (scratch / "bbb-tool").stat()
    assert (scratch / "aaa-small").read_bytes() == b"small\n" and oct(small.st_mode & 0o7777) == "0o444"
    assert (scratch / "bbb-tool").read_bytes() == b"#!/bin/sh\n" and oct(tool.st_mode & 0o7777) == "0o555"
    assert small.st_mtime == tool.st_mtime == 1
    assert small.st_ino != (real / "aaa-small").stat().st_ino  # a copy, never a link to the store's inode
    assert os.readlink(scratch / "eee-link") == "/opt/store/aaa-small"
    assert sorted(p.name for p in scratch.iterdir()) == ["aaa-small", "bbb-tool", "eee-link"]


def test_a_builder_changes_its_copy_of_an_input_never_the_store(tmp_path: Path) -> None:
    """Small inputs are the builder's own copies (writable by it, as Nix's are by the build user's
    root-owned links: not at all outside); large ones stay read-only mounts."""
    write_recipe(tmp_path, "small", "echo small > $out")
    write_recipe(tmp_path, "big", "$builder dd if=/dev/zero of=$out bs=1024 count=100 2>/dev/null")
    write_recipe(tmp_path, "link", "$builder ln -s ${inputs.s} $out", inputs={"s": "small.toml"})
    script = """
      s=${inputs.s}; b=${inputs.b}; l=${inputs.l}
      $builder stat -c '%a %Y' $s > $out
      $builder readlink $l >> $out
      $builder cat $l >> $out
      $builder chmod u+w $s && echo changed > $s && $builder cat $s >> $out
      if $builder chmod u+w $b 2>/dev/null || echo x >> $b; then echo big-writable >> $out; fi
    """
    recipe = write_recipe(
        tmp_path, "user", script, inputs={"s": "small.toml", "b": "big.toml", "l": "link.toml"}
    )
    (out,) = build_recipe(tmp_path, recipe)
    with open_store(tmp_path / "s") as store:
        small = next(p for p in store.query_all_valid_paths() if p.name == "small")
        big = next(p for p in store.query_all_valid_paths() if p.name == "big")
        assert Path(out).read_text() == f"444 1\n{small}\nsmall\nchanged\n"
        assert Path(store.real_path(small)).read_text() == "small\n"
        assert oct(os.stat(store.real_path(small)).st_mode & 0o777) == "0o444"
        assert Path(store.real_path(big)).read_bytes() == b"\0" * 102400
