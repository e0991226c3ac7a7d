"""The CLI as a whole: one way to name stores, `--json` where commands print data (Nix's bytes where a
command mirrors Nix's), overlay stores from the command line, one-line errors, shell completion.

Data printed as JSON is checked against real Nix wherever Nix has the same query (path-info, build,
-qR, --referrers, --print-roots, --print-dead, --optimise, nix hash, --print-fixed-path).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from cache_helpers import build_closure, side_spec
from nixoracle import NixStore, make_nix_store
from typer.testing import CliRunner

from storekit.cli import app, main
from storekit.cli._options import STORE_HELP
from storekit.nar.fs import hash_path
from storekit.store.local import LocalStore
from storekit.store.specs import OverlayStoreSpec, local_spec_for
from storekit.storepath import StoreDir

REPO = Path(__file__).resolve().parent.parent.parent
#: Every command group of the CLI (test_every_group_is_polished checks the list is complete).
GROUPS = (
    "hash",
    "nar",
    "path",
    "drv",
    "key",
    "store",
    "copy",
    "provision",
    "cache",
    "build",
    "log",
    "run",
    "relocate",
    "elf",
    "bootstrap",
    "template",
    "nix-conf",
    "nix-store",
)


def test_every_group_is_polished() -> None:
    from storekit.cli import COMMANDS

    # `patchelf` speaks patchelf's own command line, errors and exit codes, not click's: its polish is
    # patchelf's (tests/elf/test_elf_patchelf_cli.py)
    assert set(GROUPS) | {"patchelf"} == set(COMMANDS)


def cli(*args: str, input: bytes | None = None) -> bytes:
    """`storekit ARGS` in process; its stdout bytes (it must succeed)."""
    result = CliRunner().invoke(app, list(args), input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout_bytes


def cli_json(*args: str) -> object:
    out = cli(*args, "--json")
    assert out.endswith(b"\n") and out.count(b"\n}\n") + out.count(b"\n]\n") <= 1, out
    return json.loads(out)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`storekit ARGS` in process through the real error boundary: (status, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def storekit_proc(
    *args: str, env: dict[str, str] | None = None, input: bytes = b""
) -> subprocess.CompletedProcess[str]:
    """`storekit ARGS` in its own process (stdin as bytes; stdout and stderr decoded)."""
    proc = subprocess.run(
        [sys.executable, "-m", "storekit", *args],
        input=input,
        capture_output=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $STOREKIT_STORE, a config dir and a data dir of our own."""
    monkeypatch.delenv("STOREKIT_STORE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


def write_config(root: Path, text: str) -> None:
    (root / "config" / "storekit").mkdir(parents=True, exist_ok=True)
    (root / "config" / "storekit" / "config.toml").write_text(text)


# --- 1. one way to name stores ---------------------------------------------------------------------------


def test_the_config_files_store_is_every_commands_default(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = isolated
    (tmp / "f").write_text("hello\n")
    configured = str(tmp / "configured" / "store")
    write_config(tmp, f'store = "{configured}"\n')
    added = cli("store", "add", str(tmp / "f")).decode().strip()
    assert added == str(StoreDir(configured).make_source_path("f", hash_path(tmp / "f")[0]))
    assert cli("store", "closure", added).decode().split() == [added]  # read back through the config too
    assert json.loads(cli("store", "info", "--json", added))[0]["path"] == added
    # $STOREKIT_STORE beats the file, --store beats both
    env_store = str(tmp / "env" / "store")
    monkeypatch.setenv("STOREKIT_STORE", env_store)
    assert cli("store", "add", str(tmp / "f")).decode().startswith(env_store + "/")
    option_store = str(tmp / "option" / "store")
    assert (
        cli("store", "add", "--store", option_store, str(tmp / "f")).decode().startswith(option_store + "/")
    )


def test_a_broken_config_does_not_stop_commands_given_a_store(isolated: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    write_config(isolated, "stor = 1\n")
    (isolated / "f").write_text("x")
    code, _, err = run_main(capsys, "store", "add", str(isolated / "f"))
    assert code == 1 and err.startswith("error: ") and "unknown key" in err and err.count("\n") == 1
    assert cli("store", "add", "--store", str(isolated / "s" / "store"), str(isolated / "f"))


def _commands(group: str) -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="storekit")
    command = root.get_command(ctx, group)  # type: ignore[attr-defined]
    if not hasattr(command, "list_commands"):
        return [(group, command)]
    sub_ctx = command.context_class(command, info_name=group, parent=ctx)
    return [(f"{group} {n}", command.get_command(sub_ctx, n)) for n in command.list_commands(sub_ctx)]


def test_every_store_option_has_the_one_help_text() -> None:
    seen = []
    for group in GROUPS:
        for name, command in _commands(group):
            for param in command.params:  # type: ignore[attr-defined]
                if "--store" in param.opts and name != "store optimise":  # optimise: repeatable, says so
                    assert param.help == STORE_HELP, name
                    seen.append(name)
    assert {
        "store info",
        "store gc",
        "build",
        "log",
        "run",
        "cache serve",
        "drv instantiate",
        "nix-conf",
        "bootstrap build",
        "bootstrap status",
    } <= set(seen)
    for group in ("copy", "relocate"):  # two stores: --from and --to, each defaulting to your store
        params = {p.opts[0]: p for p in dict(_commands(group))[group].params}  # type: ignore[attr-defined]
        assert "--from" in params and "--to" in params and "--store" not in params, group
        assert params["--from"].default is None and params["--to"].default is None, group
        assert not params["--from"].required and not params["--to"].required, group


# --- 2. JSON, checked against real Nix ---------------------------------------------------------------------


@pytest.mark.interop
def test_store_info_json_is_nix_path_info_json_byte_for_byte(nix_store: NixStore) -> None:
    top = str(build_closure(nix_store))
    for flags in ([], ["-r"], ["-r", "-S"]):
        theirs = nix_store.run("nix", "path-info", "--json", *flags, top)
        ours = cli("store", "info", "--json", *flags, "--store", nix_store.uri, top)
        assert ours == theirs  # no trailing newline, as Nix 2.8
    assert not theirs.endswith(b"\n")


@pytest.mark.interop
def test_closure_referrers_and_roots_json_match_nix(nix_store: NixStore, tmp_path: Path) -> None:
    top = str(build_closure(nix_store))
    uri = nix_store.uri
    closure = nix_store.text("nix-store", "-qR", top).split()
    assert (
        cli_json("store", "closure", "--store", uri, top)
        == cli("store", "closure", "--store", uri, top).decode().split()
    )
    assert set(cli_json("store", "closure", "--store", uri, top)) == set(closure)  # type: ignore[arg-type]
    dep = next(p for p in closure if p.endswith("-dep"))
    assert cli_json("store", "referrers", "--store", uri, dep) == sorted(
        nix_store.text("nix-store", "-q", "--referrers", dep).split()
    )
    cli("store", "add-root", "--store", uri, top, str(tmp_path / "result"))
    theirs = nix_store.text("nix-store", "--gc", "--print-roots").splitlines()
    assert [f"{r['link']} -> {r['path']}" for r in cli_json("store", "roots", "--store", uri)] == theirs  # type: ignore[union-attr]


@pytest.mark.interop
def test_gc_json_deletes_what_nix_calls_dead(nix_store: NixStore, tmp_path: Path) -> None:
    for name in ("kept", "dead1", "dead2"):
        (tmp_path / name).write_text(name)
    kept, *_ = (nix_store.text("nix-store", "--add", str(tmp_path / n)) for n in ("kept", "dead1", "dead2"))
    cli("store", "add-root", "--store", nix_store.store_dir, kept, str(tmp_path / "result"))
    dead = sorted(nix_store.text("nix-store", "--gc", "--print-dead").split())
    dry = cli_json("store", "gc", "--dry-run", "--store", nix_store.store_dir)
    assert dry["dryRun"] is True and sorted(dry["paths"]) == dead and dry["bytesFreed"] > 0  # type: ignore[index]
    done = cli_json("store", "gc", "--store", nix_store.store_dir)
    assert done == {**dry, "dryRun": False}  # type: ignore[dict-item]
    assert nix_store.text("nix-store", "--gc", "--print-dead") == ""
    assert all(not os.path.lexists(p) for p in dead) and os.path.exists(kept)


@pytest.mark.interop
def test_verify_json_reports_what_nix_reports(nix_store: NixStore, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f").write_text("original\n")
    added = nix_store.text("nix-store", "--add", str(tmp_path / "f"))
    assert cli_json("store", "verify", "--check-contents", "--store", nix_store.store_dir) == {
        "checked": 1, "ok": True, "errors": [], "fixed": []
    }  # fmt: skip
    os.chmod(added, 0o644)
    Path(added).write_text("changed\n")
    code, out, err = run_main(
        capsys, "store", "verify", "--check-contents", "--json", "--store", nix_store.store_dir
    )
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and len(report["errors"]) == 1
    assert err.startswith("error: ") and err.count("\n") == 1
    proc = subprocess.run(
        ["nix-store", "--store", nix_store.uri, "--verify", "--check-contents"],
        capture_output=True, text=True, env=nix_store.env(), check=False,
    )  # fmt: skip
    assert report["errors"][0] in proc.stderr


@pytest.mark.interop
def test_optimise_json_counts_what_nix_counts(tmp_path: Path) -> None:
    stores = [make_nix_store(tmp_path / n) for n in ("ours", "theirs")]
    for i, name in enumerate(("a", "b", "c")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "same").write_text("same bytes\n" * 100)
        (tmp_path / name / "own").write_text(f"own {i}\n")
        for s in stores:
            s.run("nix-store", "--add", str(tmp_path / name))
    ours = cli_json("store", "optimise", "--store", stores[0].store_dir)
    proc = subprocess.run(
        ["nix-store", "--store", stores[1].uri, "--optimise"],
        capture_output=True,
        text=True,
        env=stores[1].env(),
    )
    mib = f"{ours['bytesFreed'] / (1024 * 1024):.2f} MiB"  # type: ignore[index]
    assert f"{mib} freed by hard-linking {ours['filesLinked']} files" in proc.stderr  # type: ignore[index]
    assert ours["filesLinked"] == 2  # type: ignore[index]


@pytest.mark.interop
def test_build_json_is_nix_build_json(nix_store: NixStore) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap not installed")
    expr = (
        'derivation { name = "two"; system = builtins.currentSystem; builder = "/bin/sh"; '
        'outputs = ["out" "dev"]; args = ["-c" "echo o > $out; echo d > $dev"]; }'
    )
    drv = nix_store.text("nix-instantiate", "-E", expr)
    nix_store.run("nix-store", "--realise", drv)
    theirs = nix_store.run("nix", "build", "--json", "--no-link", drv)
    ours = cli(
        "build", "-q", "--json", "--no-out-link", "--store", nix_store.uri, drv
    )  # outputs valid: nothing to build
    assert ours == theirs
    outputs = json.loads(theirs)[0]["outputs"]
    assert cli("build", "-q", "--no-out-link", "--store", nix_store.uri, drv).decode().split() == [
        outputs["dev"],
        outputs["out"],
    ]
    assert json.loads(
        cli("build", "-q", "--json", "--no-out-link", "--store", nix_store.uri, f"{drv}!dev")
    ) == [{"drvPath": drv, "outputs": {"dev": outputs["dev"]}}]


@pytest.mark.interop
def test_hash_and_path_json_match_nix(nix_store: NixStore, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("contents\n")
    d, x = str(tmp_path / "d"), str(tmp_path / "d" / "x")
    nix = lambda *a: nix_store.text(*a, store_flag=False)  # noqa: E731
    assert cli_json("hash", "path", "--base32", d, x) == [
        {"path": d, "hash": nix("nix", "hash", "path", "--base32", d)},
        {"path": x, "hash": nix("nix", "hash", "path", "--base32", x)},
    ]
    assert cli_json("hash", "file", "--type", "sha1", x) == [
        {"path": x, "hash": nix("nix", "hash", "file", "--type", "sha1", x)}
    ]
    added = nix_store.text("nix-store", "--add", d)
    info = json.loads(nix_store.run("nix", "path-info", "--json", added))[0]
    source = cli_json("path", "source", "--store-dir", nix_store.store_dir, d)
    assert source == {
        "path": added,
        "storeDir": nix_store.store_dir,
        "hashPart": os.path.basename(added)[:32],
        "name": "d",
        "narHash": info["narHash"],
        "narSize": info["narSize"],
    }
    sha = nix("nix", "hash", "file", "--base32", x)
    fixed = nix("nix-store", "--print-fixed-path", "sha256", sha, "x")
    assert cli_json("path", "fixed", "--store-dir", nix_store.store_dir, "sha256", sha, "x")["path"] == fixed  # type: ignore[index]
    text = cli("path", "text", "--store-dir", nix_store.store_dir, "t", x).decode().strip()
    assert cli_json("path", "text", "--store-dir", nix_store.store_dir, "t", x)["path"] == text  # type: ignore[index]


@pytest.mark.interop
def test_copy_cache_info_and_drv_check_json(nix_store: NixStore, tmp_path: Path) -> None:
    top = str(build_closure(nix_store))
    closure = set(nix_store.text("nix-store", "-qR", top).split())
    cache = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}&compression=none"
    copied = cli_json("copy", "--from", nix_store.uri, "--to", cache, top)
    assert set(copied["copied"]) == closure and copied["alreadyValid"] == [] and copied["narBytes"] > 0  # type: ignore[index]
    again = cli_json("copy", "--from", nix_store.uri, "--to", cache, top)
    assert again["copied"] == [] and set(again["alreadyValid"]) == closure  # type: ignore[index]
    # the cache's nix-cache-info, as real Nix writes it for a file:// cache of this store dir
    nix_cache = tmp_path / "nix-cache"
    nix_store.run(
        "nix", "copy", "--to", f"file://{nix_cache}?compression=none&store={nix_store.store_dir}", top
    )
    fields = dict(line.split(": ", 1) for line in (nix_cache / "nix-cache-info").read_text().splitlines())
    theirs = cli_json("cache", "info", f"file://{nix_cache}?store={nix_store.store_dir}")
    assert theirs == {"storeDir": fields["StoreDir"]}
    drv = nix_store.text("nix-instantiate", "-E", 'derivation { name = "c"; system = "x"; builder = "/b"; }')
    assert cli_json("drv", "check", drv) == [{"drvPath": drv, "ok": True, "problems": []}]


# --- 3. overlay stores from the CLI ------------------------------------------------------------------------


def test_gc_delete_info_closure_on_an_overlay(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store_dir = str(tmp_path / "s" / "store")
    lower_spec = local_spec_for(store_dir)
    with LocalStore(lower_spec) as lower:
        base = lower.add_text("base", b"lower\n")
        other = lower.add_text("other", b"only in the lower store\n")
    overlay = str(OverlayStoreSpec(lower_spec, side_spec(tmp_path / "upper", store_dir)))
    uses = cli(
        "store", "add-text", "--store", overlay, "uses", "-r", str(base), "-", input=f"{base}\n".encode()
    )
    uses_path = uses.decode().strip()
    assert cli_json("store", "closure", "--store", overlay, uses_path) == [str(base), uses_path]
    assert json.loads(cli("store", "info", "--json", "--store", overlay, str(base)))[0]["path"] == str(base)
    # a lower path cannot be deleted through the overlay: one line, the store untouched
    code, _, err = run_main(capsys, "store", "delete", "--store", overlay, str(other))
    assert code == 1 and err.count("\n") == 1 and "read-only lower store" in err
    # optimise needs a local store: a one-line refusal naming the lower store to use instead
    code, _, err = run_main(capsys, "store", "optimise", "--store", overlay)
    assert code == 1 and err.count("\n") == 1 and "overlay store" in err and str(lower_spec) in err
    # verify checks the upper: its own path and the row it borrowed for `base`
    report = cli_json("store", "verify", "--json", "--store", overlay)
    assert report == {"checked": 2, "ok": True, "errors": [], "fixed": []}
    # rooted upper path survives GC; unrooted, GC deletes it from the upper and leaves the lower alone
    cli("store", "add-root", "--store", overlay, uses_path, str(tmp_path / "result"))
    assert cli_json("store", "gc", "--store", overlay)["paths"] == []  # type: ignore[index]
    os.unlink(tmp_path / "result")
    assert uses_path in cli_json("store", "gc", "--store", overlay)["paths"]  # type: ignore[index,operator]
    assert not os.path.lexists(tmp_path / "upper" / "store" / os.path.basename(uses_path))
    assert os.path.isfile(str(base)) and os.path.isfile(str(other))
    again = cli(
        "store", "add-text", "--store", overlay, "uses", "-r", str(base), "-", input=f"{base}\n".encode()
    )
    assert cli_json("store", "delete", "--store", overlay, again.decode().strip())["paths"] == [uses_path]  # type: ignore[index]
    with LocalStore(lower_spec) as lower:
        assert lower.is_valid_path(base) and lower.is_valid_path(other)


# --- 4. errors: one line, no traceback; usage errors: click's usage message, exit 2 -------------------------


def _error_cases(tmp: Path) -> list[tuple[str, list[str]]]:
    """(what, argv) pairs: for each group a bad argument and a missing file."""
    missing = str(tmp / "missing")
    store = str(tmp / "s" / "store")
    not_nar = str(tmp / "not-a-nar")
    return [
        ("hash: bad algorithm", ["hash", "file", "--type", "md6", not_nar]),
        ("hash: missing file", ["hash", "path", missing]),
        ("nar: not a NAR", ["nar", "cat", not_nar, "/x"]),
        ("nar: missing file", ["nar", "ls", missing]),
        ("path: bad hash", ["path", "fixed", "sha256", "nothex", "name"]),
        ("path: missing file", ["path", "text", "t", missing]),
        ("drv: bad store dir", ["drv", "show", "--store-dir", "relative", not_nar]),
        ("drv: missing file", ["drv", "check", missing]),
        ("key: bad name", ["key", "generate", "a:b"]),
        ("store: not in the store", ["store", "info", "--store", store, not_nar]),
        ("store: missing file", ["store", "import", "--store", store, missing]),
        ("store: missing text file", ["store", "add-text", "--store", store, "t", missing]),
        (
            "store: not writable",
            ["store", "export", "--store", store, "-o", f"{missing}/x", f"{store}/{'0' * 32}-x"],
        ),
        ("store: verify a cache", ["store", "verify", "--store", f"file://{tmp / 'cache'}?store={store}"]),
        ("store: gc a cache", ["store", "gc", "--store", f"file://{tmp / 'cache'}?store={store}"]),
        ("copy: no source or destination", ["copy", f"{store}/{'0' * 32}-x"]),
        ("copy: missing key file", ["copy", "--sign-key", missing, "--to", store, f"{store}/{'0' * 32}-x"]),
        ("provision: no paths", ["provision", "--to", store]),
        ("provision: not a job dir", ["provision", "--release", str(tmp)]),
        ("cache: not a cache", ["cache", "info", store]),
        ("cache: missing cache", ["cache", "info", f"file://{missing}"]),
        ("build: not a derivation path", ["build", "--store", store, not_nar]),
        ("build: missing recipe", ["build", "--store", store, f"{missing}.toml"]),
        ("log: not in the store", ["log", "--store", store, not_nar]),
        ("log: missing path", ["log", "--store", store, f"{store}/{'0' * 32}-x.drv"]),
        ("run: not a local store", ["run", "--store", f"file://{tmp / 'cache'}", "--", "true"]),
        ("relocate: no source or destination", ["relocate", f"{store}/{'0' * 32}-x"]),
        ("relocate: not in the store", ["relocate", "--from", store, "--to", f"{tmp}/new/store", not_nar]),
        ("elf: not an ELF file", ["elf", "print", not_nar]),
        ("elf: missing file", ["elf", "set-rpath", "/lib", missing]),
        ("bootstrap: missing profile", ["bootstrap", "plan", "--store", store, f"{missing}.toml"]),
        ("bootstrap: not a profile", ["bootstrap", "status", "--store", store, not_nar]),
        ("template: unknown name", ["template", "init", "nosuch", str(tmp / "t")]),
        ("template: unwritable dir", ["template", "init", "opt-store", f"{not_nar}/sub"]),
        ("nix-conf: not a local store", ["nix-conf", "--store", "file:///x"]),
        ("nix-conf: bad store spec", ["nix-conf", "--store", "bogus"]),
        ("nix-store: not --serve", ["nix-store", "--store", store]),
    ]


def test_user_errors_are_one_line_without_traceback(tmp_path: Path, isolated: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "not-a-nar").write_text("v\n")
    cases = _error_cases(tmp_path)
    assert {argv[0] for _, argv in cases} == set(GROUPS)
    for what, argv in cases:
        code, out, err = run_main(capsys, *argv)
        assert (code, out) == (1, ""), (what, code, out, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (what, err)


def test_errors_from_stdin_and_exec_as_a_user_sees_them(tmp_path: Path) -> None:
    """In a real process: a binary file as a secret key, a command that does not exist, a missing config."""
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "STOREKIT_STORE": str(tmp_path / "s" / "store"),
    }
    for argv, stdin in ((["key", "public"], bytes(range(256))), (["run", "--", str(tmp_path / "nope")], b"")):
        proc = storekit_proc(*argv, env=env, input=stdin)
        assert proc.returncode == 1 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, (
            proc.stderr
        )
    (tmp_path / "config" / "storekit" / "config.toml").mkdir(parents=True)
    proc = storekit_proc("store", "roots", env={k: v for k, v in env.items() if k != "STOREKIT_STORE"})
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, (
        proc.stderr
    )
    proc = storekit_proc(
        "store", "roots", "--debug", env={k: v for k, v in env.items() if k != "STOREKIT_STORE"}
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr  # --debug shows it


@pytest.mark.parametrize("group", GROUPS)
def test_usage_errors_are_clicks_short_message(group: str, capsys) -> None:  # type: ignore[no-untyped-def]
    for argv in ([group, "--no-such-option"], [*group.split(), *_a_subcommand(group), "--no-such-option"]):
        code, out, err = run_main(capsys, *argv)
        assert code == 2 and out == "" and "Traceback" not in err, (argv, err)
        assert err.startswith("Usage: storekit ") and "No such option: --no-such-option" in err, err
        assert len(err.splitlines()) <= 6


def _a_subcommand(group: str) -> list[str]:
    name, _ = _commands(group)[0]
    return name.split()[1:]


def test_an_unknown_command_is_a_usage_error(capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run_main(capsys, "no-such-command")
    assert code == 2 and "No such command 'no-such-command'" in err and "Traceback" not in err
    assert "Did you mean" not in err


@pytest.mark.parametrize(
    ("argv", "suggested"),
    [
        (["stroe"], "'store'"),
        (["relocat", "--help"], "'relocate'"),
        (["store", "clsure"], "'closure'"),
        (["elf", "set-rpth"], "'set-rpath'"),
        (["bootstrap", "stauts"], "'status'"),
    ],
)
def test_a_mistyped_command_gets_a_suggestion(argv: list[str], suggested: str, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_main(capsys, *argv)
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"No such command '{argv[-1] if argv[-1] != '--help' else argv[0]}'" in err
    assert "Did you mean " in err and suggested in err


# --- 5. shell completion -----------------------------------------------------------------------------------


def _complete(words: str, env: dict[str, str]) -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    completion_env = {
        **env,
        "_STOREKIT_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=completion_env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("heavy:"), proc.stdout
    assert lines[-1] == "heavy: []", f"completion imported {lines[-1]}"
    return [line for line in lines[:-1] if line]


#: Runs a completion in a fresh interpreter, then says which heavy modules it imported.
PROBE = """
import atexit, sys
HEAVY = ("storekit.realise.driver", "storekit.realise.runner", "storekit.transfer.copy",
         "storekit.store.local", "tqdm")
atexit.register(lambda: print("heavy:", [m for m in HEAVY if m in sys.modules]))
from storekit.cli import main
main()
"""


def test_show_completion_prints_a_bash_script() -> None:
    """Typed at a bash prompt: typer finds the shell among the command's ancestors (shellingham), so
    bash runs it and stays its parent (a second command after it keeps bash from exec'ing it). Run
    straight from a process whose ancestors hold no shell (a detached pytest), it finds none."""
    env = {**os.environ, "SHELL": "/bin/bash"}
    script = '"$0" -m storekit --show-completion; status=$?; exit "$status"'
    proc = subprocess.run(
        ["bash", "-c", script, sys.executable],
        capture_output=True, text=True, cwd=REPO, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "_STOREKIT_COMPLETE=complete_bash" in proc.stdout
    assert "complete -o default -F _storekit_completion storekit" in proc.stdout


def test_completion_options_are_the_roots_only() -> None:
    root = typer.main.get_command(app)
    assert "--show-completion" in {o for p in root.params for o in p.opts}
    for group in GROUPS:
        for name, command in _commands(group):
            opts = {o for p in command.params for o in p.opts}  # type: ignore[attr-defined]
            assert not opts & {"--install-completion", "--show-completion"}, name


def test_store_paths_and_template_names_complete_cheaply(tmp_path: Path) -> None:
    """Store paths complete from the real dir: here a rootless store whose store dir does not exist."""
    spec = local_spec_for(
        f"/nonexistent-{tmp_path.name}/store",
        state_dir=str(tmp_path / "var"),
        real_dir=str(tmp_path / "real"),
    )
    with LocalStore(spec) as s:
        greeting = str(s.add_text("greeting", b"hi\n"))
        green = str(s.add_text("green-thing", b"x"))
    (tmp_path / "real" / f"{os.path.basename(green)}.lock").write_text("")
    env = {**os.environ, "STOREKIT_STORE": str(spec), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    store_dir = spec.store_dir
    assert _complete(f"storekit store info {store_dir}", env) == sorted([greeting, green])
    assert _complete(f"storekit store info {greeting[:-5]}", env) == [greeting]
    assert _complete(f"storekit copy --to /x {green[:-3]}", env) == [green]
    assert _complete(f"storekit build {green[:-3]}", env) == [green]
    assert _complete(f"storekit log {green[:-3]}", env) == [green]
    assert _complete("storekit store info gre", env) == []  # not a store path: the shell completes files
    assert _complete(f"storekit store info {greeting}/sub", env) == []
    assert _complete("storekit template init ", env) == ["binary-cache", "lfs", "opt-store"]
    assert _complete("storekit st", env) == ["store"]


# --- start-up: what a command imports (its fixed cost; bench/startup.py measures it) -------------------

_IMPORTS = """
import sys
from storekit.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(sorted(m for m in ("typer", "rich", "cryptography", "tqdm") if m in sys.modules), file=sys.stderr)
"""


def _imported(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORTS, *args], capture_output=True, text=True, cwd=REPO, check=True
    )
    return json.loads(proc.stderr.strip().splitlines()[-1].replace("'", '"'))


def test_version_imports_no_typer_and_help_no_rich(tmp_path: Path) -> None:
    assert _imported("--version") == []
    (tmp_path / "f").write_text("x\n")
    assert _imported("hash", "path", str(tmp_path / "f")) == []  # a plain line: cli/_fast.py
    assert _imported("hash", "path", "--json", str(tmp_path / "f")) == []
    assert _imported("nar", "hash", str(tmp_path / "f")) == ["typer"]
    assert _imported("store", "gc", "--help") == ["typer"]  # plain help: rich is never imported
    assert _imported("store", "gc", "--no-such-option") == ["typer"]


def test_help_names_every_value() -> None:
    """No usage line shows typer's `{name}`, no option or argument its type name (`<str>`, `<int>`)."""
    page = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    usages = [line for line in page.splitlines() if line.startswith("storekit ")]
    assert usages and not [u for u in usages if "{" in u]
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert not [r for r in rows if "`" in r[3:] and "<" in r[3 : r.index("`", 3)]]
    out = CliRunner().invoke(app, ["build", "--help"]).output
    assert "TARGETS..." in out and "--store STORE" in out and "<str>" not in out
