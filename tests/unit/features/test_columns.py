"""Columns read as text: the fast paths for clean requests give what the per-value rules give."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from features.columns import texts


def _rule(value: object) -> str | None:
    """The per-value rule ``texts`` applies (missing or blank -> None, 1.0 -> "1", stripped)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


_VALUES = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(["a", "B", "7", " ", "\t", "-"]), max_size=4),
    st.integers(-5, 5),
    st.sampled_from([1.0, 2.5, float("nan")]),
)


@given(st.lists(_VALUES, max_size=8))
def test_texts_follow_the_per_value_rules(values: list[object]) -> None:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    assert texts({"v": column}, "v").tolist() == [_rule(v) for v in values]


def test_clean_text_and_integer_codes_take_the_fast_paths() -> None:
    clean = np.array(["CN", None, "DE"], dtype=object)
    assert texts({"v": clean}, "v").tolist() == ["CN", None, "DE"]
    codes = np.array([4, None, 1], dtype=object)
    assert texts({"v": codes}, "v").tolist() == ["4", None, "1"]
    assert texts({"v": np.array([" x", ""], dtype=object)}, "v").tolist() == ["x", None]
