"""Building a small profile for real: the seed, the generic builder, the sandbox, resume and keep-going.

Each test has a store of its own (so none depends on another having run), holding a seed made from
this host's bash, coreutils, sed, grep, tar, gzip and gcc (a second or two); the packages are tiny
shell scripts (and one C program) so each build takes a second, while
everything around them is the real thing: `bootstrap/lfs/builder.sh`, storekit's build engine,
bubblewrap with no host /usr, sources realised from a mirror as fixed outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storekit.bootstrap.config import load_profile
from storekit.bootstrap.driver import Bootstrap
from storekit.bootstrap.verify import verify
from storekit.cli import app
from storekit.elf.fs import read_facts
from storekit.progress import ProgressEvent
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for

REPO = Path(__file__).resolve().parent.parent.parent
BUILDER = REPO / "bootstrap" / "lfs" / "builder.sh"

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

SCRIPTS = {
    "a": 'mkdir -p "$out/bin"\nprintf \'#!%s\\necho "a says $(cat %s/share/word)"\\n\' "$seed/bin/bash" '
    '"$out" > "$out/bin/a"\nchmod +x "$out/bin/a"\nmkdir -p "$out/share"\ncat word > "$out/share/word"\n',
    "b": 'mkdir -p "$out"\na > "$out/from-a"\n',
    "x": 'mkdir -p "$out"\necho x > "$out/x"\n',
    "hello": 'mkdir -p "$out/bin"\n'
    "printf '#include <stdio.h>\\nint main(void){puts(\"hi from C\");return 0;}\\n' > h.c\n"
    'gcc -O1 -o "$out/bin/hello-c" h.c\n',
    "c": 'mkdir -p "$out"\nls / > "$out/root"\nhello-c > "$out/hello"\nb_word=$(cat "$pkg_b/from-a")\n'
    'echo "$b_word" > "$out/b"\n',
}
VERIFY = 'mkdir -p "$out"\n[ "$(hello-c)" = "hi from C" ] && echo ok > "$out/report.txt"\n'


def profile_text(sha: str) -> str:
    return f"""
[profile]
name = "tiny"

[seed]
tools = ["bash", "cat", "mkdir", "ls", "chmod", "sed", "grep", "tar", "gzip", "rm", "cp", "touch",
         "sort", "tr", "find", "gcc", "as", "ld"]
debian_packages = ["libc6-dev", "gcc-12", "cpp-12", "libgcc-12-dev", "binutils-x86-64-linux-gnu"]
compilers = ["gcc"]

[scan]
allow = ["share/doc/*"]

[verify]
stage = "two"
script = "verify.sh"

[[stages]]
name = "one"
sandbox_paths = ["/bin/sh=@seed@/bin/sh"]

[[stages]]
name = "two"
inputs = ["seed"]

[packages.a]
stage = "one"
version = "1"
sources = [{{ url = "https://example.org/a-1.tar.gz", sha256 = "{sha}" }}]

[packages.b]
stage = "one"
version = "1"
deps = ["a"]

[packages.x]
stage = "one"
version = "1"

[packages.hello]
stage = "one"
version = "1"

[packages.c]
stage = "two"
version = "1"
"""


def make_source(directory: Path) -> str:
    """The one source: a tarball holding `a-1/word`; returns its sha256."""
    src = directory / "src" / "a-1"
    src.mkdir(parents=True)
    (src / "word").write_text("bonjour\n")
    mirror = directory / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / "a-1.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="a-1")
    return hashlib.sha256((mirror / "a-1.tar.gz").read_bytes()).hexdigest()


def write_profile(directory: Path, sha: str, scripts: dict[str, str] | None = None, extra: str = "") -> str:
    (directory / "packages").mkdir(exist_ok=True)
    shutil.copy(BUILDER, directory / "builder.sh")
    (directory / "verify.sh").write_text(VERIFY)
    for name, body in {**SCRIPTS, **(scripts or {})}.items():
        (directory / "packages" / f"{name}.sh").write_text(body)
    path = directory / "tiny.toml"
    path.write_text(profile_text(sha) + extra)
    return str(path)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, str, LocalStore]]:
    """This test's own directory, source tarball (its sha256) and store."""
    root = tmp_path
    sha = make_source(root)
    store = LocalStore(local_spec_for(str(root / "store")))
    yield root, sha, store
    store.close()


def boot(root: Path, sha: str, store: LocalStore, **kw: object) -> Bootstrap:
    return Bootstrap(load_profile(write_profile(root, sha, **kw)), store)  # type: ignore[arg-type]


def test_build_everything_then_nothing(world: tuple[Path, str, LocalStore]) -> None:
    root, sha, store = world
    b = boot(root, sha, store)
    summary = b.build(mirror=str(root / "mirror"), jobs=2)
    assert summary.ok, summary.failed
    assert set(summary.built) == {"a", "b", "x", "hello", "c"}
    plan = b.plan
    c_out = Path(store.real_path(plan.packages["c"].planned.out))
    # the seed's tools ran in a sandbox without the host's /usr, /lib or /lib64
    root_listing = (c_out / "root").read_text().split()
    assert "build" in root_listing and not {"usr", "lib", "lib64"} & set(root_listing)
    assert (c_out / "hello").read_text() == "hi from C\n"
    assert (c_out / "b").read_text() == "a says bonjour\n"
    hello = read_facts(store.real_path(plan.packages["hello"].planned.out) + "/bin/hello-c")
    assert hello.interpreter is not None and hello.interpreter.startswith(str(plan.seed.out) + "/")
    # per-package logs and timings
    assert "building a-1" in Path(b.package_log("a")).read_text()
    states = {s.id: s for _, ss in b.status() for s in ss}
    assert all(s.status == "built" for s in states.values())
    assert states["a"].seconds is not None
    # a second run builds nothing
    again = boot(root, sha, store).build(mirror=str(root / "mirror"))
    assert again.built == {} and set(again.valid) == {"a", "b", "x", "hello", "c"}


def test_the_seed_is_self_contained(world: tuple[Path, str, LocalStore]) -> None:
    root, sha, store = world
    b = boot(root, sha, store)
    b.ensure_seed()
    seed = store.real_path(b.plan.seed.out)
    bash = read_facts(os.path.join(seed, "usr/bin/bash"))
    assert bash.interpreter == f"{b.plan.seed.out}/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert bash.runpath is None or bash.runpath.startswith(str(b.plan.seed.out))
    assert store.query_references(b.plan.seed.out) == {b.plan.seed.out}
    assert store.lookup_path_info(b.plan.seed.out).deriver == b.plan.seed.drv_path  # type: ignore[union-attr]
    # and it runs with no host directory but the store: `env -i` on a host whose /usr it never reads
    out = subprocess.run(
        ["bwrap", "--unshare-all", "--ro-bind", str(root / "store"), str(root / "store"), "--dev", "/dev",
         "--proc", "/proc", "--clearenv", "--", f"{seed}/bin/bash", "-c", "ls /; echo ok"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.split()[-1] == "ok" and "usr" not in out.stdout.split()


def test_a_failure_keeps_what_was_built_and_a_rerun_resumes(world: tuple[Path, str, LocalStore]) -> None:
    root, sha, store = world
    failing = {"b": 'echo "b is broken" >&2; exit 3\n', "x": 'mkdir -p "$out"; echo x2 > "$out/x"\n'}
    assert boot(root, sha, store).build(mirror=str(root / "mirror")).ok  # everything, as it was
    b = boot(root, sha, store, scripts=failing)
    summary = b.build(mirror=str(root / "mirror"))
    assert "b" in summary.failed and "b is broken" in summary.failed["b"]
    assert "c" in summary.blocked
    assert "a" in summary.valid  # built before the failure, untouched
    assert "b is broken" in Path(b.package_log("b")).read_text()
    fixed = boot(root, sha, store, scripts={"x": failing["x"]})
    resumed = fixed.build(mirror=str(root / "mirror"))
    assert resumed.ok and set(resumed.built) <= {"b", "c", "x"} and "a" in resumed.valid

    # a retry keeps the attempt before as b.log.1 (each attempt's log here names its own time)
    retry = {**failing, "b": 'echo "b is broken at $EPOCHREALTIME" >&2; exit 3\n'}
    first = boot(root, sha, store, scripts=retry).build(mirror=str(root / "mirror"))
    log = Path(b.package_log("b"))
    first_log = log.read_text()
    again = boot(root, sha, store, scripts=retry).build(mirror=str(root / "mirror"))
    assert "b" in first.failed and "b" in again.failed
    assert Path(f"{log}.1").read_text() == first_log and "b is broken at" in first_log
    assert "b is broken at" in log.read_text() and log.read_text() != first_log


def test_keep_going_builds_what_does_not_depend_on_the_failure(world: tuple[Path, str, LocalStore]) -> None:
    root, sha, store = world
    scripts = {
        "b": "exit 1\n",
        "x": 'mkdir -p "$out"; echo x3 > "$out/x"\n',
        "hello": SCRIPTS["hello"] + "# 3\n",
    }
    stopped = boot(root, sha, store, scripts=scripts).build(mirror=str(root / "mirror"), jobs=1)
    assert set(stopped.failed) == {"b"} and "c" in stopped.blocked
    going = boot(root, sha, store, scripts=scripts).build(
        mirror=str(root / "mirror"), jobs=1, keep_going=True
    )
    assert set(going.failed) == {"b"}
    assert {"x", "hello"} <= set(going.built) | set(going.valid)
    assert going.blocked == ("c",)


def test_until_stops_at_a_package(world: tuple[Path, str, LocalStore]) -> None:
    root, sha, store = world
    b = boot(root, sha, store, scripts={"a": SCRIPTS["a"] + "# until\n"})
    summary = b.build(mirror=str(root / "mirror"), until=["a"])
    assert set(summary.built) | set(summary.valid) == {"a"}
    states = {s.id: s.status for _, ss in b.status() for s in ss}
    assert states["a"] == "built" and states["b"] == "to-build"


def test_an_optional_package_is_built_only_when_named(world: tuple[Path, str, LocalStore]) -> None:
    """A long test suite declared `optional`: a plain build leaves it out, `--until` names it (twice)."""
    root, sha, store = world
    suite = '\n[packages.suite]\nstage = "two"\nversion = "1"\noptional = true\n'
    kw = {"scripts": {"suite": 'mkdir -p "$out"; hello-c > "$out/ran"\n'}, "extra": suite}
    plain = boot(root, sha, store, **kw).build(mirror=str(root / "mirror"))
    assert plain.ok and "suite" not in {*plain.built, *plain.valid}
    config = write_profile(root, sha, **kw)  # type: ignore[arg-type]
    base = ["--store", str(root / "store")]
    shown = CliRunner().invoke(app, ["bootstrap", "status", config, *base])
    assert shown.exit_code == 0 and "optional: built only by build --until suite" in shown.stdout
    named = CliRunner().invoke(
        app, ["bootstrap", "build", config, *base, "--mirror", str(root / "mirror"), "--until", "suite",
              "--until", "x", "-q"]
    )  # fmt: skip
    assert named.exit_code == 0, named.output
    out = boot(root, sha, store, **kw).plan.packages["suite"].planned.out
    assert Path(store.real_path(out), "ran").read_text() == "hi from C\n"


def test_a_package_s_own_sandbox_paths_are_seen_by_it_alone(world: tuple[Path, str, LocalStore]) -> None:
    """Built in one run of the stage, `peek` sees the path it declares and `blind`, beside it, does not."""
    root, sha, store = world
    extra = (
        '\n[packages.peek]\nstage = "one"\nversion = "1"\ndeps = ["a"]\n'
        'sandbox_paths = ["/bin/word=@a@/share/word"]\n'
        '\n[packages.blind]\nstage = "one"\nversion = "1"\ndeps = ["a"]\n'
    )
    scripts = {
        "peek": 'mkdir -p "$out"\ncat /bin/word > "$out/word"\n',
        "blind": 'mkdir -p "$out"\nif [ -e /bin/word ]; then echo seen; else echo unseen; fi > "$out/word"\n',
    }
    b = boot(root, sha, store, scripts=scripts, extra=extra)
    summary = b.build(mirror=str(root / "mirror"), until=["peek", "blind"], jobs=2)
    assert summary.ok and {"peek", "blind"} <= set(summary.built)
    word = {
        pid: Path(store.real_path(b.plan.packages[pid].planned.out), "word").read_text() for pid in scripts
    }
    assert word == {"peek": "bonjour\n", "blind": "unseen\n"}


def test_an_interrupted_build_keeps_the_time_of_each_package_it_finished(
    world: tuple[Path, str, LocalStore],
) -> None:
    """Timings are written as each package finishes: Ctrl-C during a long stage keeps the earlier ones."""
    root, sha, store = world
    b = boot(root, sha, store, scripts={"x": 'mkdir -p "$out"; echo x-interrupted > "$out/x"\n'})

    def interrupt(event: ProgressEvent) -> None:
        if event.phase == "step" and event.message.startswith("built "):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        b.build(mirror=str(root / "mirror"), until=["x"], progress=interrupt)
    states = {s.id: s for _, ss in b.status() for s in ss}
    assert states["x"].status == "built" and states["x"].seconds is not None


def test_a_packages_log_is_complete_as_soon_as_it_is_built(world: tuple[Path, str, LocalStore]) -> None:
    """Logs are written as output comes, not when the stage ends: `tail -f` follows a long build."""
    root, sha, store = world
    b = boot(root, sha, store, scripts={"x": 'mkdir -p "$out"; echo x-logged > "$out/x"; echo said-x\n'})
    seen: list[str] = []

    def look(event: ProgressEvent) -> None:
        if event.phase == "step" and event.message.startswith("built "):
            seen.append(Path(b.package_log("x")).read_text())

    assert b.build(mirror=str(root / "mirror"), until=["x"], progress=look).ok
    assert seen and "said-x" in seen[0] and "builder: x-1 done" in seen[0]


def test_host_paths_in_an_output_fail_the_package(world: tuple[Path, str, LocalStore]) -> None:
    root, sha, store = world
    leak = {"x": 'mkdir -p "$out/share/doc" "$out/etc"\necho "#!/usr/bin/perl" > "$out/etc/leak"\n'}
    summary = boot(root, sha, store, scripts=leak).build(mirror=str(root / "mirror"), until=["x"])
    assert "output mentions host paths" in summary.failed["x"]
    assert "etc/leak: /usr/bin/" in summary.failed["x"]
    allowed = {"x": leak["x"].replace("etc/leak", "share/doc/leak").replace('"$out/etc"', '"$out/share/doc"')}
    assert boot(root, sha, store, scripts=allowed).build(mirror=str(root / "mirror"), until=["x"]).ok


def test_verify_and_the_cli(world: tuple[Path, str, LocalStore]) -> None:
    root, sha, store = world
    b = boot(root, sha, store)
    assert b.build(mirror=str(root / "mirror")).ok
    checks = verify(b)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert len(checks) == 6
    config = str(root / "tiny.toml")
    result = CliRunner().invoke(
        app, ["bootstrap", "status", config, "--store", str(root / "store"), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["name"] for s in doc["stages"]] == ["seed", "one", "two"]
    a = doc["stages"][1]["packages"][0]
    keys = {"name", "version", "status", "drv", "outputs", "sources", "seconds", "weak_pins", "optional"}
    assert set(a) == keys
    assert a["weak_pins"] == [] and a["optional"] is False  # its source has a sha256; built by default
    assert a["name"] == "a" and a["status"] == "built" and a["drv"].endswith("-a-1.drv")
    assert a["sources"] == [{"url": "https://example.org/a-1.tar.gz", "sha256": sha}]
    result = CliRunner().invoke(app, ["bootstrap", "verify", config, "--store", str(root / "store")])
    assert result.exit_code == 0 and result.stdout.count("ok: ") == 6


def test_verify_finds_a_program_whose_library_is_not_in_its_rpath(
    world: tuple[Path, str, LocalStore],
) -> None:
    """Installed into $out/lib without an rpath to it, a library is found only on a /usr system."""
    root, sha, store = world
    lib = (
        'mkdir -p "$out/bin" "$out/lib"\n'
        "printf 'int answer(void){return 42;}\\n' > l.c\n"
        'gcc -shared -fPIC -o "$out/lib/libanswer.so" l.c\n'
        "printf 'int answer(void);\\nint main(void){return answer()==42?0:1;}\\n' > m.c\n"
        'gcc -o "$out/bin/answer" m.c -L"$out/lib" -lanswer{rpath}\n'
    )
    broken = boot(root, sha, store, scripts={"hello": SCRIPTS["hello"] + lib.replace("{rpath}", "")})
    assert broken.build(mirror=str(root / "mirror")).ok
    check = next(c for c in verify(broken) if c.name.startswith("programs find their shared libraries"))
    assert not check.ok and "bin/answer: libanswer.so" in check.detail
    fixed = boot(
        root,
        sha,
        store,
        scripts={"hello": SCRIPTS["hello"] + lib.replace("{rpath}", ' -Wl,-rpath,"$out/lib"')},
    )
    assert fixed.build(mirror=str(root / "mirror")).ok
    assert all(c.ok for c in verify(fixed)), [c for c in verify(fixed) if not c.ok]


def test_status_shows_what_a_substituter_has(world: tuple[Path, str, LocalStore]) -> None:
    from storekit.realise.driver import Sources
    from storekit.store.substituters import SignaturePolicy, Substituters

    root, sha, store = world
    assert boot(root, sha, store).build(mirror=str(root / "mirror"), until=["a"]).ok
    # a second store for the same store dir, its files elsewhere, empty: `a` can come from the first
    other = LocalStore(
        local_spec_for(
            str(root / "store"),
            state_dir=str(root / "other" / "state"),
            real_dir=str(root / "other" / "real"),
        )
    )
    try:
        substituters = Sources(Substituters([store]), SignaturePolicy(require_sigs=False))
        config = write_profile(root, sha, scripts={"c": SCRIPTS["c"] + "# never built\n"})
        b = Bootstrap(load_profile(config), other, sources=substituters)
        states = {s.id: s.status for _, ss in b.status() for s in ss}
        assert states["a"] == "substitutable" and states["seed"] == "substitutable"
        assert states["c"] == "to-build"
    finally:
        other.close()
