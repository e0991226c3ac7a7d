"""ATerm parse/print: byte-identical round trips of real Nix `.drv` files, and errors with a caret."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storekit.derivation import Derivation, DerivationOutput
from storekit.derivation.aterm import escape, parse, print_aterm
from storekit.errors import DerivationParseError

GOLDEN = Path(__file__).parent.parent / "data" / "derivations" / "store"
DRV_FILES = sorted(GOLDEN.glob("*.drv"))


def read(file: Path) -> str:
    return file.read_bytes().decode("utf-8", "surrogateescape")


def test_golden_vectors_present() -> None:
    # regenerate.sh writes 23 derivations; an empty glob would make the parametrized tests vacuous.
    assert len(DRV_FILES) >= 20


@pytest.mark.parametrize("file", DRV_FILES, ids=lambda f: f.name)
def test_round_trip_of_real_drv_files(file: Path) -> None:
    text = read(file)
    drv = parse(text)
    assert print_aterm(drv) == text
    assert print_aterm(drv).encode("utf-8", "surrogateescape") == file.read_bytes()


def test_fields_of_a_multi_output_drv() -> None:
    (file,) = GOLDEN.glob("*-multi.drv")
    drv = parse(read(file))
    assert list(drv.outputs) == ["dev", "doc", "out"]
    assert drv.name == "multi"
    assert drv.env["outputs"] == "out dev doc"
    assert all(o.is_input_addressed for o in drv.outputs.values())
    assert drv.outputs["dev"].path.endswith("-multi-dev")
    assert not drv.is_fixed_output


def test_fields_of_a_fixed_output_drv() -> None:
    (file,) = GOLDEN.glob("*-fod-rec-sha512.drv")
    drv = parse(read(file))
    assert drv.is_fixed_output
    out = drv.outputs["out"]
    assert out.hash_algo == "r:sha512"
    assert out.content_hash.sri == drv.env["outputHash"]


def test_escapes_decode_to_the_strings_nix_was_given() -> None:
    (file,) = GOLDEN.glob("*-escapes.drv")
    drv = parse(read(file))
    assert drv.args[2:] == ("tab\there", "cr\rhere", "nl\nhere", "back\\slash", 'quote"q')
    assert drv.env["a"] == 'dollar $HOME ${not} \\ " \n \t \r end'
    assert drv.env["unicode"] == "héllo wörld ✓ 日本 🚀"
    assert "\x01" in drv.env["control"] and "\udcff" in drv.env["control"]
    # Nix orders env keys by bytes: é (c3) < U+E000 (ee 80 80) < the byte ff.
    assert list(drv.env)[-3:] == ["é", "\ue000private", "\udcffkey"]


def test_constructor_sorts_like_nix() -> None:
    drv = Derivation(
        outputs={"out": DerivationOutput("/s/a-x"), "dev": DerivationOutput("/s/b-x-dev")},
        input_drvs={"/s/z.drv": ["out", "dev", "out"], "/s/a.drv": ["b"]},
        input_srcs=("/s/z", "/s/a", "/s/z"),
        system="x86_64-linux",
        builder="/bin/sh",
        args=("-c", "true"),
        env={"\udcff": "1", "\ue000": "2", "b": "3", "a": "4"},
    )
    assert list(drv.outputs) == ["dev", "out"]
    assert dict(drv.input_drvs) == {"/s/a.drv": ("b",), "/s/z.drv": ("dev", "out")}
    assert drv.input_srcs == ("/s/a", "/s/z")
    assert list(drv.env) == ["a", "b", "\ue000", "\udcff"]
    assert parse(print_aterm(drv)) == drv
    assert hash(parse(print_aterm(drv))) == hash(drv)


def test_escape_is_nix_printstring() -> None:
    assert escape('a"b\\c\nd\re\tf$g\x01') == '"a\\"b\\\\c\\nd\\re\\tf$g\x01"'


def test_mask_outputs_blanks_paths_and_output_env_vars() -> None:
    (file,) = GOLDEN.glob("*-multi.drv")
    drv = parse(read(file))
    masked = print_aterm(drv, mask_outputs=True)
    assert "/opt/store/" not in masked.split("],[", 1)[0]
    assert '("dev","")' in masked and '("out","")' in masked
    assert '("outputs","out dev doc")' in masked


# --- errors ----------------------------------------------------------------------------------------


GOOD = 'Derive([("out","/s/h-x","","")],[],[],"sys","/bin/sh",["-c","a\\nb"],[("k","v")])'


def test_good_sample_parses() -> None:
    assert parse(GOOD).args == ("-c", "a\nb")


@pytest.mark.parametrize(
    ("text", "reason", "caret_at"),
    [
        (GOOD.replace("\\n", "\\q"), "invalid escape '\\q'", GOOD.index("\\n")),
        (GOOD.replace("],[],[]", "],[];[]"), "expected ','", GOOD.index("],[],[]") + 4),
        (GOOD.replace("Derive(", "Derivf("), "expected 'Derive('", 0),
        (GOOD.replace('["-c",', '["-c";'), "expected ',' or ']'", GOOD.index('["-c",') + 5),
        (GOOD + "\n", "unexpected text after the end", len(GOOD)),
        (GOOD.replace('"",""', '"md7","ab"'), "unknown hash algorithm 'md7'", GOOD.index('"",""')),
        (GOOD.replace('"",""', '"sha256","abc"'), "bad hash of output 'out'", GOOD.index('"",""') + 9),
        (GOOD.replace('("k","v")', '("k","v"),("k","w")'), "environment variable 'k' appears twice", None),
        (GOOD.replace('[],[],"sys"', '[],["rel"],"sys"'), "bad path 'rel'", None),
    ],
)
def test_parse_errors_point_at_the_problem(text: str, reason: str, caret_at: int | None) -> None:
    with pytest.raises(DerivationParseError) as info:
        parse(text)
    err = info.value
    assert reason in err.reason
    if caret_at is not None:
        assert err.span[0] == caret_at
    shown, caret = str(err).splitlines()[1:3]
    assert "~" in caret
    # The caret sits under the offending text as shown on the line above.
    col = caret.index("~")
    start, _ = err.span
    if start < len(text) and text[start] != "\n":
        assert shown[col] == text[start]


def test_every_truncation_of_a_real_drv_is_a_parse_error() -> None:
    (file,) = GOLDEN.glob("*-diamond.drv")
    text = read(file)
    for end in range(len(text)):
        with pytest.raises(DerivationParseError):
            parse(text[:end])


@settings(max_examples=300)
@given(st.data())
def test_any_single_edit_parses_or_fails_with_a_parse_error(data: st.DataObject) -> None:
    text = read(DRV_FILES[0])
    i = data.draw(st.integers(0, len(text) - 1))
    c = data.draw(st.sampled_from('"\\,()[]x/\n'))
    edited = text[:i] + c + text[i + 1 :]
    try:
        drv = parse(edited)
    except DerivationParseError:
        return
    assert isinstance(drv, Derivation)


# --- properties ------------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from('"\\\n\r\t$'), max_size=15)
_path = st.from_regex(r"/[a-z0-9]{1,8}/[0-9a-z]{4}-[a-z.+=?]{1,6}", fullmatch=True)
_HEX = {"sha256": "ab" * 32, "r:sha1": "cd" * 20, "md5": "ef" * 16, "r:sha512": "0f" * 64}
_output = st.one_of(
    _path.map(DerivationOutput),
    st.just(DerivationOutput()),
    st.tuples(_path, st.sampled_from(sorted(_HEX))).map(lambda t: DerivationOutput(t[0], t[1], _HEX[t[1]])),
    st.sampled_from(sorted(_HEX)).map(lambda a: DerivationOutput("", a, "")),
    st.sampled_from(sorted(_HEX)).map(lambda a: DerivationOutput("", a, "impure")),
)
_name = st.from_regex(r"[a-z]{1,5}", fullmatch=True)
derivations = st.builds(
    Derivation,
    outputs=st.dictionaries(_name, _output, min_size=1, max_size=3),
    input_drvs=st.dictionaries(_path.map(lambda p: p + ".drv"), st.lists(_name, max_size=3), max_size=3),
    input_srcs=st.lists(_path, max_size=3).map(tuple),
    system=st.from_regex(r"[a-z0-9_-]{0,12}", fullmatch=True),
    builder=_text,
    args=st.lists(_text, max_size=4).map(tuple),
    env=st.dictionaries(_text, _text, max_size=5),
)


@settings(max_examples=60)
@given(derivations)
def test_print_then_parse_is_identity(drv: Derivation) -> None:
    text = print_aterm(drv)
    assert parse(text) == drv
    assert print_aterm(parse(text)) == text
