"""A hypothesis strategy for any JSON value a signed ledger row could hold, hostile ones
included: shared by the tests that put such values into ledger rows
(tests/ledger/test_verify_hostile_rows.py, tests/ledger/test_verify_hostile_row_kinds.py).
"""

from __future__ import annotations

from hypothesis import strategies as st

#: a JSON integer no float holds
HUGE = 10**400

ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([HUGE, -HUGE, 0, 1, 2, -1])
    | st.floats(allow_nan=False)  # the writer refuses NaN; infinities are stored as "inf"
    | st.sampled_from(["inf", "-inf", "nan", "", "complete", "aborted", "x|y\nz"])
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
