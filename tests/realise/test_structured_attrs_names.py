"""`structured_attrs.is_name` is the regular expressions it replaced (without `re`, for start-up)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from storekit.realise.structured_attrs import is_name

SH_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FILE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
TEXT = st.text(alphabet=st.sampled_from("aZ_09.-é٣ ﬁ$/\x00"), max_size=6)


@given(TEXT)
def test_is_name_matches_the_expressions(text: str) -> None:
    assert is_name(text) == bool(SH_NAME.fullmatch(text) and text.isascii())
    assert is_name(text, more=".-") == bool(FILE_NAME.fullmatch(text) and text.isascii())


def test_examples() -> None:
    assert is_name("out") and is_name("_x9") and not is_name("") and not is_name("9x")
    assert not is_name("a-b") and is_name("a-b", more=".-") and not is_name(".a", more=".-")
