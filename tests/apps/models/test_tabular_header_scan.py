"""The header's duplicate-column check reads the header once (review, 2026-12-06: it
scanned the whole header once per distinct name, 10^8 comparisons for a 10 000-column
file and minutes for 100 000 columns before the refusal), and names the same column as
before: the first name, in header order, that repeats, with every column it is in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models.tabular import _header_problem


class _CountedName(str):
    """A column name that counts how often it is compared for equality."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _CountedName.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_a_wide_header_is_checked_in_one_pass() -> None:
    columns = 3_000
    header = [_CountedName(f"V{j}") for j in range(columns)] + [_CountedName("V7")]
    _CountedName.compared = 0
    problem = _header_problem("wide.csv", header)
    assert problem is not None and "'V7' appears 2 times" in str(problem)
    assert f"(columns 8, {columns + 1})" in str(problem)
    # the old scan compared every column with every distinct name: about 9 million here
    assert _CountedName.compared <= 4 * columns


def _oracle(header: list[str]) -> str | None:
    """The rule as written: the first non-empty name in header order seen twice."""
    for name in dict.fromkeys(h for h in header if h):
        where = [j + 1 for j, h in enumerate(header) if h == name]
        if len(where) > 1:
            return f"column {name!r} appears {len(where)} times in the header (columns " + (
                ", ".join(map(str, where)) + ")"
            )
    return None


@settings(max_examples=50)
@given(st.lists(st.sampled_from(["a", "b", "c", "", "Class", "V1"]), min_size=2, max_size=12))
def test_the_named_duplicate_is_the_first_in_header_order(header: list[str]) -> None:
    problem = _header_problem("t.csv", header)
    expected = _oracle(header)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in str(problem)
