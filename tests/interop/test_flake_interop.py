"""The flake templates and `storekit nix-conf` against real Nix 2.8 (and a real nginx).

Real Nix must list the templates (`nix flake show`), create them (`nix flake init -t`) exactly as
`storekit template init` does, evaluate the flakes inside them, substitute from a binary cache served
by the binary-cache template's nginx config with its client settings, and use a store through the
settings `storekit nix-conf` prints. The repository's flake is copied to a temp dir first and
addressed as `path:`, so nothing depends on the checkout's git state.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from nixoracle import NixStore, make_nix_store, require_nix

from storekit.templates import list_templates

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parent.parent.parent
NAMES = [t.name for t in list_templates()]


@pytest.fixture(scope="module")
def flake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the files the root flake needs (no .git, so Nix reads it as a plain path)."""
    root = tmp_path_factory.mktemp("flake") / "storekit"
    root.mkdir()
    shutil.copy2(REPO / "flake.nix", root / "flake.nix")
    shutil.copytree(REPO / "templates", root / "templates", symlinks=True)
    return root


@pytest.fixture(scope="module")
def nix(tmp_path_factory: pytest.TempPathFactory) -> NixStore:
    return make_nix_store(tmp_path_factory.mktemp("nix"))


def nix_run(nix: NixStore, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, env=nix.env(), capture_output=True, text=True, check=False)


def storekit(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    full_env = {**(env or os.environ), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "storekit", *args], cwd=cwd, env=full_env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def tree(root: Path) -> dict[str, tuple[str, int, bytes]]:
    entries = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            entries[rel] = ("symlink", 0, os.fsencode(os.readlink(path)))
        elif path.is_dir():
            entries[rel] = ("dir", st.st_mode & 0o7777, b"")
        else:
            entries[rel] = ("file", st.st_mode & 0o7777, path.read_bytes())
    return entries


# --- listing and creating ------------------------------------------------------------------------


def test_nix_flake_show_lists_the_templates_storekit_lists(nix: NixStore, flake: Path) -> None:
    proc = nix_run(nix, "nix", "flake", "show", "--json", f"path:{flake}")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert set(shown) == {"templates"}
    ours = json.loads(storekit("template", "list", "--json"))
    assert {name: {"description": t["description"]} for name, t in shown["templates"].items()} == ours
    assert all(t["type"] == "template" for t in shown["templates"].values())
    assert sorted(ours) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_storekit_template_init_writes_what_nix_flake_init_writes(
    nix: NixStore, flake: Path, tmp_path: Path, name: str
) -> None:
    by_nix, by_storekit = tmp_path / "nix", tmp_path / "storekit"
    by_nix.mkdir()
    proc = nix_run(nix, "nix", "flake", "init", "-t", f"path:{flake}#{name}", cwd=by_nix)
    assert proc.returncode == 0, proc.stderr
    storekit("template", "init", name, str(by_storekit))
    assert tree(by_nix) == tree(by_storekit)
    assert (by_nix / "README.md").is_file()
    # Each tool accepts the other's result as already done: identical files are not conflicts.
    assert storekit("template", "init", name, str(by_nix)) == ""
    proc = nix_run(nix, "nix", "flake", "init", "-t", f"path:{flake}#{name}", cwd=by_storekit)
    assert proc.returncode == 0, proc.stderr
    assert tree(by_nix) == tree(by_storekit)


def test_both_refuse_to_overwrite_a_changed_file(nix: NixStore, flake: Path, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("my own notes\n")
    proc = nix_run(nix, "nix", "flake", "init", "-t", f"path:{flake}#lfs", cwd=tmp_path)
    assert proc.returncode != 0
    assert "refusing to overwrite existing file" in proc.stderr
    ours = subprocess.run(
        [sys.executable, "-m", "storekit", "template", "init", "lfs", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert ours.returncode == 1
    assert f"refusing to overwrite existing file '{tmp_path}/README.md'" in ours.stderr
    assert (tmp_path / "README.md").read_text() == "my own notes\n"


# --- the flakes inside the templates -------------------------------------------------------------

FAKE_NIXPKGS = """{
  outputs = { self }:
    let genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    in {
      lib = {
        inherit genAttrs;
        warnIf = cond: msg: x: if cond then builtins.trace "warning: ${msg}" x else x;
      };
      legacyPackages = genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: {
        hello = derivation {
          name = "hello"; inherit system; builder = "/bin/sh";
          args = [ "-c" "echo hello > $out" ];
        };
      });
    };
}
"""


@pytest.fixture(scope="module")
def fake_nixpkgs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Just the nixpkgs attributes the opt-store flake uses, so it evaluates offline."""
    path = tmp_path_factory.mktemp("fake-nixpkgs")
    (path / "flake.nix").write_text(FAKE_NIXPKGS)
    return path


def test_opt_store_flake_builds_and_warns_about_another_store_dir(
    nix: NixStore, fake_nixpkgs: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    storekit("template", "init", "opt-store", str(project))
    proc = nix_run(
        nix, "nix", "build", "--store", nix.uri, "--json", "--no-link", "--no-write-lock-file",
        "--override-input", "nixpkgs", f"path:{fake_nixpkgs}", f"path:{project}#hello",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)[0]["outputs"]["out"]
    assert Path(out).read_text() == "hello\n"
    assert out.startswith(nix.store_dir + "/")
    assert f"this flake builds for /opt/store but Nix uses {nix.store_dir}" in proc.stderr


def test_opt_store_flake_evaluates_for_opt_store_without_warning(
    nix: NixStore, fake_nixpkgs: Path, tmp_path: Path
) -> None:
    # Logical store dir /opt/store, files in the temp dir: nothing is written under /opt.
    project = tmp_path / "project"
    storekit("template", "init", "opt-store", str(project))
    uri = f"local?store=/opt/store&state={tmp_path}/var/nix&real={tmp_path}/real"
    proc = nix_run(
        nix, "nix", "eval", "--store", uri, "--raw", "--no-write-lock-file",
        "--override-input", "nixpkgs", f"path:{fake_nixpkgs}", f"path:{project}#hello.outPath",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("/opt/store/") and proc.stdout.endswith("-hello")
    assert "this flake builds for" not in proc.stderr


def test_lfs_flake_checks_and_gives_the_bootstrap_commands(nix: NixStore, tmp_path: Path) -> None:
    storekit("template", "init", "lfs", str(tmp_path))
    proc = nix_run(nix, "nix", "flake", "check", f"path:{tmp_path}")
    assert proc.returncode == 0, proc.stderr
    proc = nix_run(nix, "nix", "eval", "--raw", f"path:{tmp_path}#bootstrap.script")
    assert proc.returncode == 0, proc.stderr
    assert "storekit bootstrap build bootstrap/lfs/mini.toml --store /opt/store\n" in proc.stdout
    syntax = subprocess.run(["bash", "-n"], input=proc.stdout, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


# --- the binary-cache template: nginx serves, real Nix substitutes ----------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The template's server block in a throw-away nginx: (cache dir it serves, port)."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx not installed")
    cache, port = tmp_path / "cache", free_port()
    cache.mkdir()
    server = (REPO / "templates" / "binary-cache" / "nginx.conf").read_text()
    assert "listen 80;" in server and "root /srv/cache;" in server
    server = server.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("/srv/cache", str(cache))
    (tmp_path / "server.conf").write_text(server)
    temps = " ".join(
        f"{t}_temp_path {tmp_path}/{t};" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"daemon off; master_process off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{ access_log off; {temps} include {tmp_path}/server.conf; }}\n"
    )
    proc = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield cache, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client_env(tmp_path: Path, nix_conf: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIX_")}
    env.update(NIX_CONFIG=nix_conf, HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg-cache"))
    return env


def test_real_nix_substitutes_from_the_template_cache_through_nginx(
    nix: NixStore, nginx: tuple[Path, int], tmp_path: Path
) -> None:
    cache, port = nginx
    secret = storekit("key", "generate", "cache.example.org-1")
    public = _public(secret)
    (tmp_path / "cache.secret").write_text(secret)
    # An input-addressed path: only a signature makes it trusted (a content-addressed one needs none).
    expr = (
        'derivation { name = "hello"; system = builtins.currentSystem; builder = "/bin/sh";'
        ' args = [ "-c" "echo hello from the cache > $out" ]; }'
    )
    path = nix.text("nix-build", "--no-out-link", "-E", expr)
    nix.run("nix", "copy", "--to", f"file://{cache}?compression=xz&secret-key={tmp_path}/cache.secret", path)

    headers = urllib.request.urlopen(f"http://127.0.0.1:{port}/{Path(path).name[:32]}.narinfo").headers
    assert headers["Cache-Control"] == "max-age=300"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/flake.nix")

    # The template's client nix.conf with this test's store dir, host and key (files kept in the temp dir).
    template = (REPO / "templates" / "binary-cache" / "nix.conf").read_text()
    conf = (
        template.replace("/opt/store&", f"{nix.store_dir}&real={tmp_path}/client/store&")
        .replace("/opt/store", nix.store_dir)
        .replace("/opt/var", f"{tmp_path}/client/var")
        .replace("http://cache.example.org", f"http://127.0.0.1:{port}")
    )
    wrong_key = _public(storekit("key", "generate", "cache.example.org-1"))
    placeholder = "cache.example.org-1:REPLACE-WITH-THE-CONTENTS-OF-cache.public"
    untrusted = subprocess.run(
        ["nix-store", "--realise", path],
        env=client_env(tmp_path, conf.replace(placeholder, wrong_key)),
        capture_output=True,
        text=True,
    )
    assert untrusted.returncode != 0
    assert "is not signed by any of the keys in 'trusted-public-keys'" in untrusted.stderr
    assert not (tmp_path / "client" / "store" / Path(path).name).exists()
    trusted = subprocess.run(
        ["nix-store", "--realise", path],
        env=client_env(tmp_path, conf.replace(placeholder, public)),
        capture_output=True,
        text=True,
    )
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip() == path
    assert (tmp_path / "client" / "store" / Path(path).name).read_text() == "hello from the cache\n"


def _public(secret: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "storekit", "key", "public"],
        input=secret,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


# --- storekit nix-conf: real Nix uses the store it describes ----------------------------------------


def test_nix_conf_settings_make_real_nix_add_and_build_into_that_store(tmp_path: Path) -> None:
    require_nix()
    store = tmp_path / "opt" / "store"
    line = storekit("nix-conf", "--store", str(store), "--env", env={"HOME": str(tmp_path), "PATH": ""})
    (tmp_path / "hello.txt").write_text("hello\n")
    script = (
        line + 'export NIX_CONFIG="$NIX_CONFIG\n$EXTRA"\n'
        "nix-store --add hello.txt\n"
        'nix-build --no-out-link -E \'derivation { name = "built"; system = builtins.currentSystem; '
        'builder = "/bin/sh"; args = [ "-c" "echo built > $out" ]; }\'\n'
    )
    env = client_env(tmp_path, "")
    env["EXTRA"] = "sandbox = false\nbuild-users-group ="
    proc = subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    added, built = proc.stdout.split()
    assert Path(added).parent == store and Path(added).name.endswith("-hello.txt")
    assert Path(built).parent == store and Path(built).read_text() == "built\n"
    assert (tmp_path / "opt" / "var" / "nix" / "db" / "db.sqlite").is_file()


def test_nix_conf_real_keeps_files_elsewhere(tmp_path: Path) -> None:
    require_nix()
    logical = tmp_path / "logical" / "store"  # never created: only the name is used
    line = storekit(
        "nix-conf", "--store", str(logical), "--real", str(tmp_path / "home" / "store"), "--env",
        env={"HOME": str(tmp_path), "PATH": ""},
    )  # fmt: skip
    (tmp_path / "hello.txt").write_text("hello\n")
    proc = subprocess.run(
        ["sh", "-c", line + "nix-store --add hello.txt"],
        cwd=tmp_path,
        env=client_env(tmp_path, ""),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    added = Path(proc.stdout.strip())
    assert added.parent == logical
    assert not logical.exists()
    assert (tmp_path / "home" / "store" / added.name).read_text() == "hello\n"
    assert (tmp_path / "home" / "var" / "nix" / "db" / "db.sqlite").is_file()
