"""`--builders` lines and `ssh://` URIs read as Nix 2.8 reads them (machines.cc, legacy-ssh-store.cc)."""

from __future__ import annotations

import base64

import pytest

from storekit.errors import StoreError, StorekitError
from storekit.remote.machines import Machine, parse_builders
from storekit.remote.uri import parse_ssh_uri, ssh_argv

KEY = base64.b64encode(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk+/key").decode()


def no_files(path: str) -> str | None:
    raise AssertionError(f"read {path}")


def test_every_column() -> None:
    line = f"ssh://b@farm x86_64-linux,i686-linux /k/id 4 2 kvm,big-parallel benchmark {KEY}"
    [m] = parse_builders(line, "aarch64-linux", no_files)
    assert m == Machine(
        "ssh://b@farm", ("x86_64-linux", "i686-linux"), "/k/id", 4, 2,
        frozenset({"kvm", "big-parallel"}), frozenset({"benchmark"}), KEY,
    )  # fmt: skip


def test_defaults_dashes_comments_separators_and_scheme() -> None:
    text = "farm1 - - - 0 ; # a comment\n\n  ssh://farm2 x86_64-linux # trailing\nlocal"
    m1, m2, m3 = parse_builders(text, "aarch64-linux", no_files)
    assert (m1.store_uri, m1.systems, m1.max_jobs, m1.speed_factor) == (
        "ssh://farm1",
        ("aarch64-linux",),
        1,
        1,
    )
    assert m2.store_uri == "ssh://farm2" and m2.systems == ("x86_64-linux",)
    assert m3.store_uri == "local"  # special words keep no scheme


def test_machines_files_nest_and_a_missing_one_is_no_machine() -> None:
    files = {"/etc/machines": "a\n@/etc/more\n@/etc/missing", "/etc/more": "b x86_64-linux"}
    got = parse_builders("@/etc/machines; c", "x86_64-linux", files.get)
    assert [m.store_uri for m in got] == ["ssh://a", "ssh://b", "ssh://c"]


@pytest.mark.parametrize("line", ["farm x86_64-linux - many", f"farm - - 1 1 - - {'!' * 8}"])
def test_bad_columns_are_refused_naming_the_line(line: str) -> None:
    with pytest.raises(StorekitError, match="bad machine specification"):
        parse_builders(line, "x86_64-linux", no_files)


def test_can_build_checks_system_and_features_as_nix() -> None:
    m = Machine("ssh://f", ("x86_64-linux",), supported_features=frozenset({"kvm"}),
                mandatory_features=frozenset({"big"}))  # fmt: skip
    assert m.can_build("x86_64-linux", ["big"]) and m.can_build("builtin", ["big", "kvm"])
    assert not m.can_build("x86_64-linux", [])  # a mandatory feature not asked for
    assert not m.can_build("x86_64-linux", ["big", "cuda"])
    assert not m.can_build("aarch64-linux", ["big"])


def test_machine_keys_become_uri_parameters() -> None:
    m = Machine("ssh://f?remote-program=/x", ("x86_64-linux",), ssh_key="/k", host_key=KEY)
    spec = parse_ssh_uri(m.with_params())
    assert (spec.ssh_key, spec.remote_program) == ("/k", "/x")
    assert spec.host_key == base64.b64decode(KEY)  # '+' and '/' survive (no form decoding)


def test_ssh_uri_parameters_and_argv() -> None:
    spec = parse_ssh_uri("ssh://me@farm?remote-store=local%3Fstore%3D/opt/store&remote-program=/bin/nix-store"
                         "&ssh-key=/k&compress=true&max-connections=3&store=/opt/store")  # fmt: skip
    assert spec.store_dir == "/opt/store" and spec.max_connections == 3
    argv = ssh_argv(spec, "-F /cfg  -o Foo=bar", "/tmp/kh")
    assert argv == [
        "ssh", "-x", "-a", "-F", "/cfg", "-o", "Foo=bar", "-i", "/k", "-oUserKnownHostsFile=/tmp/kh", "-C",
        "me@farm", "/bin/nix-store --serve --write --store 'local?store=/opt/store'",
    ]  # fmt: skip
    assert parse_ssh_uri(str(spec)) == spec
    assert ssh_argv(parse_ssh_uri("ssh://localhost"), "", None) == ["bash", "-c", "nix-store --serve --write"]


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("ssh://-oProxyCommand=x", "invalid SSH host name"),
        ("ssh://farm?colour=red", "unknown parameter 'colour'"),
        ("ssh://farm?max-connections=0", "max-connections=0"),
        ("ssh://farm?compress=perhaps", "not a boolean"),
        ("ssh://farm?store=relative", "not an absolute"),
    ],
)
def test_bad_uris_are_refused(uri: str, words: str) -> None:
    with pytest.raises(StoreError, match=words):
        parse_ssh_uri(uri)
