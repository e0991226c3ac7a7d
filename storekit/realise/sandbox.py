"""What a builder sees, as a value (`SandboxSpec`), and the bubblewrap command line that makes it so.

The model is Nix 2.8's Linux sandbox (libstore/build/local-derivation-goal.cc), built from bwrap
options instead of hand-made namespaces and a chroot:

- new user (uid 1000 `nixbld`, gid 100), mount, pid (the builder is pid 1), ipc, uts (hostname
  `localhost`), cgroup and network namespaces. The network namespace has only loopback, except for a
  fixed-output derivation (its result is checked against a hash, so it may fetch), whose namespace
  gets an outbound interface from pasta (`network.py`) before the builder starts: unlike Nix, never
  the host's namespace, whose abstract unix sockets would reach every local process;
- an empty, read-only root with only: the store dir (a scratch directory, writable, where the builder
  creates its outputs) holding the input closure at its *logical* paths: directories and large files
  bind-mounted read-only from wherever they physically are, small files and symlinks copied into the
  scratch dir beforehand (`input_copies`, as Nix links them); `/build` (the cwd, writable);
  `/etc/passwd`, `/etc/group`, `/etc/hosts` as Nix writes them (copied in by bwrap from memory, never
  written to disk); a minimal `/dev`, a fresh `/proc`, a `/tmp` tmpfs; declared `--sandbox-path`s,
  read-only;
- the environment Nix gives a builder (`builder_env`).

Everything here is pure: paths and values in, argv and texts out. `runner.py` does the spawning.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from storekit import nixbase32
from storekit.derivation.hashing import hash_placeholder
from storekit.derivation.model import Derivation
from storekit.errors import StorekitError
from storekit.frozen import Frozen
from storekit.hashing import Hash
from storekit.realise import structured_attrs

BUILD_DIR = "/build"
HOME_DIR = "/homeless-shelter"
SANDBOX_UID = 1000
SANDBOX_GID = 100
HOSTNAME = "localhost"

ETC_PASSWD = (
    f"root:x:0:0:Nix build user:{BUILD_DIR}:/noshell\n"
    f"nixbld:x:{SANDBOX_UID}:{SANDBOX_GID}:Nix build user:{BUILD_DIR}:/noshell\n"
    "nobody:x:65534:65534:Nobody:/:/noshell\n"
)
ETC_GROUP = f"root:x:0:\nnixbld:!:{SANDBOX_GID}:\nnogroup:x:65534:\n"
ETC_HOSTS = "127.0.0.1 localhost\n::1 localhost\n"
#: Fixed-output builds resolve names with the host's files and DNS, like Nix's.
ETC_NSSWITCH = "hosts: files dns\nservices: files\n"
#: Host files a fixed-output build sees (when they exist), as in Nix.
NETWORK_ETC = ("/etc/resolv.conf", "/etc/services", "/etc/hosts")


_set = object.__setattr__


class SandboxPath(Frozen):
    """A host path made visible in the sandbox (Nix's `sandbox-paths`): `TARGET[=SOURCE][?]`.

    `?` at the end makes it optional (skipped when the source does not exist). Always read-only: the
    builder runs as the calling user, so a writable host path would be writable with that user's rights.
    """

    __slots__ = ("optional", "source", "target")
    __match_args__ = ("target", "source", "optional")
    target: str
    source: str
    optional: bool

    def __init__(
        self,
        target: str,
        source: str,
        optional: bool = False,
    ) -> None:
        _set(self, "target", target)
        _set(self, "source", source)
        _set(self, "optional", optional)

    @classmethod
    def parse(cls, text: str) -> SandboxPath:
        optional = text.endswith("?")
        body = text[:-1] if optional else text
        target, sep, source = body.partition("=")
        source = source if sep else target
        for p in (target, source):
            if not p.startswith("/"):
                raise StorekitError(f"sandbox path '{text}' must be absolute: give PATH or PATH=HOSTPATH")
        return cls(posixpath.normpath(target), posixpath.normpath(source), optional)


class SandboxSpec(Frozen):
    """Everything bwrap needs to set up one build; the host directories exist and belong to the caller."""

    __slots__ = (
        "build_dir",
        "command",
        "env",
        "etc_fds",
        "inputs",
        "network",
        "sandbox_paths",
        "store_dir",
        "store_scratch",
        "sync_fds",
        "tmp",
    )
    __match_args__ = (
        "command",
        "env",
        "store_dir",
        "store_scratch",
        "build_dir",
        "etc_fds",
        "inputs",
        "sandbox_paths",
        "network",
        "sync_fds",
        "tmp",
    )
    command: tuple[str, ...]
    """What bwrap executes: the builder and its argv (see `builder_command`)."""
    env: Mapping[str, str]
    store_dir: str
    """The logical store dir, as written in the derivation."""
    store_scratch: str
    """Host directory mounted writable at `store_dir`; outputs appear in it."""
    build_dir: str
    """Host directory mounted at /build."""
    etc_fds: Mapping[str, int]
    """Files of /etc (passwd, group, hosts or nsswitch.conf; see `etc_files`) by readable fd."""
    inputs: tuple[tuple[str, str], ...]
    """(physical path, logical path) of each input path to bind-mount: those of the input closure that
    are not already in `store_scratch` (`input_copies.place_inputs`)."""
    sandbox_paths: tuple[SandboxPath, ...]
    network: bool
    sync_fds: tuple[int, int] | None
    """(info fd, block fd): bwrap reports the sandbox's pid on the first and waits for a byte on the
    second before it runs the builder (how storekit gives a fixed-output build its network first)."""
    tmp: bool

    def __init__(
        self,
        command: tuple[str, ...],
        env: Mapping[str, str],
        store_dir: str,
        store_scratch: str,
        build_dir: str,
        etc_fds: Mapping[str, int],
        inputs: tuple[tuple[str, str], ...] = (),
        sandbox_paths: tuple[SandboxPath, ...] = (),
        network: bool = False,
        sync_fds: tuple[int, int] | None = None,
        tmp: bool = True,
    ) -> None:
        _set(self, "command", command)
        _set(self, "env", env)
        _set(self, "store_dir", store_dir)
        _set(self, "store_scratch", store_scratch)
        _set(self, "build_dir", build_dir)
        _set(self, "etc_fds", etc_fds)
        _set(self, "inputs", inputs)
        _set(self, "sandbox_paths", sandbox_paths)
        _set(self, "network", network)
        _set(self, "sync_fds", sync_fds)
        _set(self, "tmp", tmp)


def bwrap_args(spec: SandboxSpec) -> list[str]:
    """The bwrap options for `spec`, without the executable and the command (`bwrap_command`).

    Order matters: mounts are made in order, so the scratch store dir comes before the inputs
    mounted inside it, and the root is made read-only last.
    """
    args = ["--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--unshare-net", "--die-with-parent", "--new-session", "--as-pid-1"]
    if spec.sync_fds is not None:
        args += ["--info-fd", str(spec.sync_fds[0]), "--block-fd", str(spec.sync_fds[1])]
    args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--hostname", HOSTNAME]
    if spec.tmp:
        args += ["--perms", "1777", "--tmpfs", "/tmp"]
    args += ["--bind", spec.store_scratch, spec.store_dir]
    for physical, logical in spec.inputs:
        args += ["--ro-bind", physical, logical]
    args += ["--bind", spec.build_dir, BUILD_DIR]
    args += ["--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm", "--proc", "/proc"]
    for name, fd in sorted(spec.etc_fds.items()):
        # a file of the root tmpfs, read-only with it (`--remount-ro /`): no mount of its own, as a
        # `--ro-bind-data` is (two mount calls per file, in every build)
        args += ["--perms", "0444", "--file", str(fd), f"/etc/{name}"]
    if spec.network:
        for path in NETWORK_ETC:
            args += ["--ro-bind-try", path, path]
    for p in spec.sandbox_paths:
        args += ["--ro-bind-try" if p.optional else "--ro-bind", p.source, p.target]
    args += ["--remount-ro", "/", "--chdir", BUILD_DIR, "--clearenv"]
    for key in sorted(spec.env, key=lambda k: k.encode("utf-8", "surrogateescape")):
        args += ["--setenv", key, spec.env[key]]  # sorted, as Nix passes its std::map
    return args


def bwrap_command(spec: SandboxSpec) -> list[str]:
    """What follows the options: bwrap reads options from `--args FD`, but the command only from argv."""
    return ["--", *spec.command]


def builder_command(drv: Derivation, trampoline: str | None) -> tuple[str, ...]:
    """The command bwrap runs: through the trampoline (argv[0] = base name, as Nix) when there is one."""
    argv0 = posixpath.basename(drv.builder)
    if trampoline is None:
        return (drv.builder, *builder_args(drv))
    return (trampoline, drv.builder, argv0, *builder_args(drv))


def output_rewrites(drv: Derivation) -> dict[str, str]:
    """Nix's `inputRewrites` for outputs whose path is known: each output's hash placeholder
    (`placeholder "out"` in the Nix language) -> its path. Applied to the env, args and passAsFile
    files, as Nix 2.8 does just before it runs the builder."""
    return {hash_placeholder(name): out.path for name, out in drv.outputs.items() if out.path}


def rewrite(text: str, rewrites: Mapping[str, str]) -> str:
    for old, new in rewrites.items():
        text = text.replace(old, new)
    return text


def builder_args(drv: Derivation) -> list[str]:
    """The derivation's args with output placeholders rewritten."""
    rewrites = output_rewrites(drv)
    return [rewrite(a, rewrites) for a in drv.args]


class BuilderEnv(Frozen):
    """The builder's environment, and files to create in /build first (for `passAsFile`)."""

    __slots__ = ("env", "files")
    __match_args__ = ("env", "files")
    env: dict[str, str]
    files: dict[str, str]

    def __init__(
        self,
        env: dict[str, str],
        files: dict[str, str],
    ) -> None:
        _set(self, "env", env)
        _set(self, "files", files)


def builder_env(
    drv: Derivation, *, store_dir: str, cores: int, host_env: Mapping[str, str] | None = None
) -> BuilderEnv:
    """Nix 2.8's `initEnv` + `initTmpDir` for a sandboxed build, in the same order (later wins).

    `host_env` supplies the `impureEnvVars` a fixed-output derivation asks for (Nix takes them from
    the environment of whoever runs the build).
    """
    env = {"PATH": "/path-not-set", "HOME": HOME_DIR, "NIX_STORE": store_dir, "NIX_BUILD_CORES": str(cores)}
    structured = structured_attrs.parse(drv, drv.name) if structured_attrs.is_structured(drv) else None
    pass_as_file = set(drv.env.get("passAsFile", "").split())
    files: dict[str, str] = {}
    for key, value in drv.env.items() if structured is None else ():  # structured: in .attrs.* only
        if key in pass_as_file:
            name = ".attr-" + nixbase32.encode(Hash.of(key.encode("utf-8", "surrogateescape")).digest)
            files[name] = value
            env[key + "Path"] = f"{BUILD_DIR}/{name}"
        else:
            env[key] = value
    env["NIX_BUILD_TOP"] = BUILD_DIR
    for key in ("TMPDIR", "TEMPDIR", "TMP", "TEMP", "PWD"):
        env[key] = BUILD_DIR
    if drv.is_fixed_output:
        env["NIX_OUTPUT_CHECKED"] = "1"
        impure = drv.env.get("impureEnvVars", "").split()
        if structured is not None:
            impure = structured_attrs.strings_attr(structured, "impureEnvVars", drv.name) or []
        for key in impure:
            env[key] = (host_env or {}).get(key, "")
    env["NIX_LOG_FD"] = "2"
    env["TERM"] = "xterm-256color"
    rewrites = output_rewrites(drv)
    env = {rewrite(k, rewrites): rewrite(v, rewrites) for k, v in env.items()}
    files = {name: rewrite(text, rewrites) for name, text in files.items()}
    if structured is not None:
        env[structured_attrs.ENV_SH] = f"{BUILD_DIR}/{structured_attrs.SH_FILE}"
        env[structured_attrs.ENV_JSON] = f"{BUILD_DIR}/{structured_attrs.JSON_FILE}"
    return BuilderEnv(env, files)


def etc_files(network: bool) -> dict[str, str]:
    """The files Nix writes into the sandbox's /etc."""
    files = {"passwd": ETC_PASSWD, "group": ETC_GROUP}
    if network:
        files["nsswitch.conf"] = ETC_NSSWITCH
    else:
        files["hosts"] = ETC_HOSTS
    return files
