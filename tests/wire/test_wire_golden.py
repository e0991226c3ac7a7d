"""storekit.wire against NixOS/nix's protocol golden files (serve-, worker- and common-protocol).

Each `.bin` holds a sequence of values at one protocol version. The test decodes every value, checks
the decoded values against the `.json` Nix wrote beside it (where there is one), and encodes them
again: the bytes must be the file's, exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nixgolden import read, store_data

from storekit.errors import WireFormatError
from storekit.realisation import DrvOutput, Realisation
from storekit.store.content_address import ca_to_json
from storekit.storepath import StoreDir, StorePath
from storekit.wire import common, serve, worker
from storekit.wire.framing import WireReader, WireWriter
from storekit.wire.values import (
    BuildOptions,
    BuildResult,
    DerivedPath,
    PathInfo,
    TrustedFlag,
)

SD = StoreDir("/nix/store")
Read = Callable[[WireReader], Any]
Write = Callable[[WireWriter, Any], None]


def decode_all(data: bytes, read_one: Read) -> list[Any]:
    r = WireReader(data)
    values = []
    while r.offset < len(data):
        values.append(read_one(r))
    return values


def encode_all(values: list[Any], write_one: Write) -> bytes:
    w = WireWriter()
    for v in values:
        write_one(w, v)
    return w.getvalue()


# --- the JSON Nix's tests wrote for each value -----------------------------------------------------------


def sig_objects(sigs: tuple[str, ...]) -> list[dict[str, str]]:
    return [dict(zip(("keyName", "sig"), s.split(":", 1), strict=True)) for s in sigs]


def unkeyed_realisation_json(v: Realisation) -> dict[str, Any]:
    return {"outPath": v.out_path.base_name, "signatures": sig_objects(v.signatures)}


def built_output_json(v: Realisation) -> dict[str, Any]:
    if "signatures" not in v.json_keys:  # compat writers leave them out; the value has none
        return {"outPath": v.out_path.base_name, "signatures": []}
    if "id" not in v.json_keys:
        return unkeyed_realisation_json(v)
    return json.loads(common.realisation_to_json(v))  # type: ignore[no-any-return]


def build_result_json(v: BuildResult) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "status": v.status.name,
        "success": v.status.success,
        "timesBuilt": v.times_built,
        "startTime": v.start_time,
        "stopTime": v.stop_time,
    }
    if v.cpu_user is not None:
        obj["cpuUser"] = v.cpu_user
    if v.cpu_system is not None:
        obj["cpuSystem"] = v.cpu_system
    if v.status.success:
        obj["builtOutputs"] = {k: built_output_json(r) for k, r in v.built_outputs.items()}
    else:
        obj["errorMsg"] = v.error_msg
        obj["isNonDeterministic"] = v.is_non_deterministic
    return obj


def derived_path_json(v: DerivedPath) -> Any:
    if v.outputs is None:
        return v.path.base_name
    return {"drvPath": v.path.base_name, "outputs": list(v.outputs)}


def path_info_json(v: PathInfo) -> dict[str, Any]:
    obj = {
        "ca": ca_to_json(v.ca) if v.ca else None,
        "deriver": v.deriver.base_name if v.deriver else None,
        "narHash": v.nar_hash.sri if v.nar_hash else "sha256-" + "A" * 43 + "=",
        "narSize": v.nar_size,
        "references": [r.base_name for r in v.references],
        "registrationTime": v.registration_time or None,
        "signatures": sig_objects(v.sigs),
        "storeDir": SD.path,
        "ultimate": v.ultimate,
        "version": 3,
    }
    if v.path is not None:
        obj["path"] = v.path.base_name
    return obj


def keyed_drv_output_json(v: DrvOutput) -> dict[str, str]:
    assert v.drv_path is not None
    return {"drvPath": v.drv_path.base_name, "outputName": v.output}


def keyed_realisation_json(v: Realisation) -> dict[str, Any]:
    assert v.id is not None
    return {"key": keyed_drv_output_json(v.id), "value": unkeyed_realisation_json(v)}


def opt(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else f(v)


def base(p: StorePath) -> str:
    return p.base_name


# --- the cases: (directory, file, read one value, write one value, value -> JSON) ----------------------

W1 = worker.WorkerVersion
BY_PATH = W1(38, frozenset({worker.REALISATION_WITH_PATH}))


def common_cases(directory: str) -> list[tuple[Any, ...]]:
    return [
        (directory, "string", lambda r: r.string(), lambda w, v: w.string(v), None),
        (
            directory,
            "store-path",
            lambda r: common.read_store_path(r, SD),
            lambda w, v: w.string(str(v)),
            base,
        ),
        (
            directory,
            "optional-store-path",
            lambda r: common.read_optional_store_path(r, SD),
            common.write_optional_store_path,
            opt(base),
        ),
        (directory, "content-address", common.read_optional_ca, common.write_optional_ca, ca_to_json),
        (
            directory,
            "optional-content-address",
            common.read_optional_ca,
            common.write_optional_ca,
            opt(ca_to_json),
        ),
    ]


LEGACY_REALISATION = (
    lambda r: common.read_realisation_json(r, SD),
    common.write_realisation_json,
    lambda v: json.loads(common.realisation_to_json(v)),
)

CASES: list[tuple[Any, ...]] = [
    *common_cases("common-protocol"),
    ("common-protocol", "drv-output", common.read_drv_output, common.write_drv_output, str),
    ("common-protocol", "realisation", *LEGACY_REALISATION),
    ("common-protocol", "realisation-with-deps", *LEGACY_REALISATION),
    *common_cases("serve-protocol"),
    ("serve-protocol", "drv-output", common.read_drv_output, common.write_drv_output, str),
    ("serve-protocol", "realisation", *LEGACY_REALISATION),
    ("serve-protocol", "realisation-with-deps", *LEGACY_REALISATION),
    *[
        (
            "serve-protocol",
            f"build-result-{name}",
            lambda r, v=v: serve.read_build_result(r, SD, v),
            lambda w, x, v=v: serve.write_build_result(w, x, v),
            build_result_json,
        )
        for name, v in [("2.2", 0x202), ("2.3", 0x203), ("2.6", 0x206), ("2.7-compat", 0x207), ("2.8", 0x208)]
    ],
    *[
        (
            "serve-protocol",
            f"unkeyed-valid-path-info-{name}",
            lambda r, v=v: serve.read_unkeyed_path_info(r, SD, v),
            lambda w, x, v=v: serve.write_unkeyed_path_info(w, x, v),
            path_info_json,
        )
        for name, v in [("2.3", 0x203), ("2.4", 0x204)]
    ],
    (
        "serve-protocol",
        "drv-output-2.8",
        lambda r: common.read_keyed_drv_output(r, SD),
        common.write_keyed_drv_output,
        keyed_drv_output_json,
    ),
    (
        "serve-protocol",
        "realisation-2.8",
        lambda r: serve.read_realisation(r, SD),
        serve.write_realisation,
        keyed_realisation_json,
    ),
    (
        "serve-protocol",
        "unkeyed-realisation-2.8",
        lambda r: common.read_unkeyed_realisation(r, SD),
        common.write_unkeyed_realisation,
        unkeyed_realisation_json,
    ),
    *common_cases("worker-protocol"),
    ("worker-protocol", "drv-output", common.read_drv_output, common.write_drv_output, str),
    ("worker-protocol", "realisation", *LEGACY_REALISATION),
    ("worker-protocol", "realisation-with-deps", *LEGACY_REALISATION),
    *[
        (
            "worker-protocol",
            f"build-result-{name}",
            lambda r, v=v: worker.read_build_result(r, SD, v),
            lambda w, x, v=v: worker.write_build_result(w, x, v),
            build_result_json,
        )
        for name, v in [
            ("1.27", W1(27)),
            ("1.28", W1(28)),
            ("1.29", W1(29)),
            ("1.29-compat", W1(29)),
            ("1.37", W1(37)),
            ("realisation-with-path-not-hash", BY_PATH),
        ]
    ],
    (
        "worker-protocol",
        "keyed-build-result-1.29",
        lambda r: worker.read_keyed_build_result(r, SD, W1(29)),
        lambda w, x: worker.write_keyed_build_result(w, x, W1(29)),
        lambda v: {"path": derived_path_json(v.path), **build_result_json(v.result)},
    ),
    *[
        (
            "worker-protocol",
            f"derived-path-1.{m}",
            lambda r, m=m: worker.read_derived_path(r, SD, W1(m)),
            lambda w, x, m=m: worker.write_derived_path(w, x, W1(m)),
            derived_path_json,
        )
        for m in (29, 30)
    ],
    *[
        (
            "worker-protocol",
            f"{kind}valid-path-info-1.{m}",
            (lambda r, m=m: worker.read_unkeyed_path_info(r, SD, W1(m)))
            if kind
            else (lambda r, m=m: worker.read_path_info(r, SD, W1(m))),
            (lambda w, x, m=m: worker.write_unkeyed_path_info(w, x, W1(m)))
            if kind
            else (lambda w, x, m=m: worker.write_path_info(w, x, W1(m))),
            path_info_json,
        )
        for kind, m in [("unkeyed-", 15), ("", 15), ("", 16)]
    ],
    ("worker-protocol", "build-mode", worker.read_build_mode, lambda w, v: w.u64(v), int),
    (
        "worker-protocol",
        "optional-trusted-flag",
        worker.read_trusted_flag,
        worker.write_trusted_flag,
        lambda v: None if v is None else v is TrustedFlag.Trusted,
    ),
    (
        "worker-protocol",
        "drv-output-realisation-with-path-not-hash",
        lambda r: worker.read_worker_drv_output(r, SD, BY_PATH),
        lambda w, x: worker.write_worker_drv_output(w, x, BY_PATH),
        keyed_drv_output_json,
    ),
    (
        "worker-protocol",
        "realisation-realisation-with-path-not-hash",
        lambda r: worker.read_realisation(r, SD, BY_PATH),
        lambda w, x: worker.write_realisation(w, x, BY_PATH),
        keyed_realisation_json,
    ),
    (
        "worker-protocol",
        "unkeyed-realisation-realisation-with-path-not-hash",
        lambda r: common.read_unkeyed_realisation(r, SD),
        common.write_unkeyed_realisation,
        unkeyed_realisation_json,
    ),
]


def case_id(case: tuple[Any, ...]) -> str:
    return f"{case[0]}/{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_golden_bin_round_trips(case: tuple[Any, ...]) -> None:
    directory, name, read_one, write_one, to_json = case
    file = store_data(directory, f"{name}.bin")
    if not file.exists():
        pytest.skip(f"{file} is not in this copy of Nix's golden data")
    data = read(file)
    values = decode_all(data, read_one)
    assert encode_all(values, write_one) == data
    json_file = file.with_suffix(".json")
    if to_json is not None and json_file.exists():
        expected = json.loads(read(json_file))
        shown = [to_json(v) for v in values]
        assert shown == (expected if isinstance(expected, list) else [expected])
    elif json_file.exists():
        expected = json.loads(read(json_file))
        assert values == expected


@pytest.mark.parametrize("directory", ["common-protocol", "serve-protocol", "worker-protocol"])
@pytest.mark.parametrize("name", ["vector", "set"])
def test_golden_lists_round_trip(directory: str, name: str) -> None:
    """Three lists of strings, then a list of lists of strings."""
    data = read(store_data(directory, f"{name}.bin"))
    r = WireReader(data)
    values: list[Any] = [r.strings() for _ in range(3)]
    values.append([r.strings() for _ in range(r.count())])
    assert r.offset == len(data)
    assert values == json.loads(read(store_data(directory, f"{name}.json")))
    w = WireWriter()
    for v in values[:3]:
        w.strings(v)
    w.u64(len(values[3]))
    for v in values[3]:
        w.strings(v)
    assert w.getvalue() == data


def test_every_protocol_golden_is_covered() -> None:
    """No `.bin` of the three protocol directories escapes the tests above."""
    covered = {(d, n) for d, n, *_ in CASES} | set(OTHER_BINS)
    covered |= {
        (d, n) for d in ("common-protocol", "serve-protocol", "worker-protocol") for n in ("set", "vector")
    }
    for directory in ("common-protocol", "serve-protocol", "worker-protocol"):
        for file in store_data(directory).glob("*.bin"):
            assert (directory, file.stem) in covered, file


# --- values without JSON beside them: handshakes, build options, client handshake info --------------

OTHER_BINS = [
    ("serve-protocol", "handshake-to-client"),
    ("worker-protocol", "handshake-to-client"),
    *[("serve-protocol", f"build-options-2.{m}") for m in (1, 2, 3, 7)],
    *[("worker-protocol", f"client-handshake-info_1_{m}") for m in (30, 33, 35)],
]


def test_handshakes() -> None:
    data = read(store_data("serve-protocol", "handshake-to-client.bin"))
    version = serve.read_handshake(WireReader(data))
    assert version == 0x205
    w = WireWriter()
    serve.write_handshake(w, version)
    assert w.getvalue() == data
    data = read(store_data("worker-protocol", "handshake-to-client.bin"))
    version = worker.read_handshake(WireReader(data))
    assert version == 0x10A
    w = WireWriter()
    worker.write_handshake(w, version)
    assert w.getvalue() == data
    with pytest.raises(WireFormatError, match="protocol mismatch"):
        serve.read_handshake(WireReader(data))


@pytest.mark.parametrize(
    ("minor", "expected"),
    [
        (1, BuildOptions(5, 6)),
        (2, BuildOptions(5, 6, 7)),
        (3, BuildOptions(5, 6, 7, 8, True)),
        (7, BuildOptions(5, 6, 7, 8, False, True)),
    ],
)
def test_serve_build_options(minor: int, expected: BuildOptions) -> None:
    data = read(store_data("serve-protocol", f"build-options-2.{minor}.bin"))
    r = WireReader(data)
    value = serve.read_build_options(r, 0x200 | minor)
    assert value == expected and r.offset == len(data)
    w = WireWriter()
    serve.write_build_options(w, value, 0x200 | minor)
    assert w.getvalue() == data


@pytest.mark.parametrize(
    ("minor", "expected"),
    [
        (30, []),
        (33, [("foo", None), ("bar", None)]),
        (35, [("foo", TrustedFlag.NotTrusted), ("bar", TrustedFlag.Trusted)]),
    ],
)
def test_client_handshake_info(minor: int, expected: list[tuple[str, TrustedFlag | None]]) -> None:
    data = read(store_data("worker-protocol", f"client-handshake-info_1_{minor}.bin"))
    v = W1(minor)
    if minor < 33:
        assert data == b""  # nothing is sent before 1.33
        return
    values = decode_all(data, lambda r: worker.read_client_handshake_info(r, v))
    assert [(x.daemon_nix_version, x.remote_trusts_us) for x in values] == expected
    assert encode_all(values, lambda w, x: worker.write_client_handshake_info(w, x, v)) == data


# --- refusals -------------------------------------------------------------------------------------------


def test_bad_padding_and_short_streams_are_refused() -> None:
    good = WireWriter().string("hi").getvalue()
    with pytest.raises(WireFormatError, match="non-zero padding"):
        WireReader(good[:-1] + b"x").string()
    with pytest.raises(WireFormatError, match="unexpected end of stream"):
        WireReader(good[:-3]).string()
    with pytest.raises(WireFormatError, match="longer than"):
        WireReader(WireWriter().u64(1 << 40).getvalue()).string()


def test_before_1_30_a_drv_path_means_all_its_outputs() -> None:
    drv = SD.parse_path("/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv")
    with pytest.raises(ValueError, match=r"1\.30"):
        worker.write_derived_path(WireWriter(), DerivedPath(drv), W1(29))
    data = WireWriter().string(f"{drv}!*").getvalue()
    with pytest.raises(WireFormatError, match=r"1\.30"):
        worker.read_derived_path(WireReader(data), SD, W1(29))
    assert worker.read_derived_path(WireReader(data), SD, W1(30)) == DerivedPath(drv, ("*",))


def test_frames_round_trip() -> None:
    data = WireWriter().frames([b"abc", b"", b"defgh"]).getvalue()
    assert list(WireReader(data).frames()) == [b"abc", b"defgh"]


def test_files_are_where_the_tests_look() -> None:
    assert isinstance(store_data("serve-protocol"), Path)


# --- build trace entries (realisations keyed by .drv path) and their signatures ---------------------------

TEST_KEY = "test-key:tU7tTvLcScf8pmz/eTV0BEtLmRsPpZfKaRcd0nCN+pysBZPHSeg61/u2oc7mIOewfuAY1V1BiX32homTaDJ2Jw=="
"""The secret key of NixOS/nix's realisation signing tests (a published test fixture)."""


@pytest.mark.parametrize("name", ["simple", "with-signature", "with-signature-unstructured"])
def test_build_trace_entries_round_trip(name: str) -> None:
    expected = json.loads(read(store_data("realisation", f"{name}.json")))
    value = common.realisation_from_keyed_json(expected, SD)
    assert common.realisation_to_keyed_json(value) == expected


@pytest.mark.parametrize("name", ["simple", "with-signature"])
def test_build_trace_fingerprints_and_signatures(name: str) -> None:
    from storekit.signing import SecretKey

    value = common.realisation_from_keyed_json(
        json.loads(read(store_data("realisation", f"{name}.json"))), SD
    )
    fingerprint = common.realisation_fingerprint(value)
    assert fingerprint == read(store_data("realisation", f"{name}-fingerprint.txt")).decode()
    signature = json.loads(read(store_data("realisation", f"{name}-sig.json")))
    assert SecretKey.parse(TEST_KEY).sign(fingerprint) == f"{signature['keyName']}:{signature['sig']}"


def test_serve_versions_negotiate_down() -> None:
    assert serve.negotiate(serve.NIX_2_8_VERSION, serve.LATEST_VERSION) == 0x207
    assert serve.negotiate(0x208, 0x206) == 0x206
    with pytest.raises(ValueError, match=r"not 2\.x"):
        serve.negotiate(0x300, 0x207)
    assert serve.ServeCommand(8) is serve.ServeCommand.BuildDerivation
