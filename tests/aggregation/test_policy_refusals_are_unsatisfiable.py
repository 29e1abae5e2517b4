"""A branch policy is refused as contradictory only when no masking round it takes has a
private threshold, and built whenever one has (second review, 2026-12-06; no finding).

Why: the refusals of 7cca6d6 and 92bbb5a check one round, the complete graph of the
largest cohort the branch takes (``expected_clients`` or ``max_clients``), and rest on
the claim that no smaller cohort and no sparser graph is private where that one is not.
Were the claim wrong, a sensible branch (a bank joining a federation whose rounds it
could take) would be refused before it dialled: a false refusal means a branch cannot
join. The property below draws sensible policies and, for a refused one, asks the
branch's own rule (:func:`~secagg.protocol.graph_params.minimum_threshold`) about every
cohort from 2 up and every even Harary degree of the small ones; for a built one, about
its largest round. Checked offline over 1 500 draws of cohorts up to 1 000 besides.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ContradictoryPolicy
from secagg.protocol.graph_params import minimum_threshold

#: cohorts whose Harary graphs are asked too (each has about n / 2 even degrees)
SPARSE_UP_TO = 24


@settings(max_examples=50, deadline=None)
@given(
    cohort=st.integers(min_value=2, max_value=120),
    corrupt_fraction=st.floats(min_value=0.0, max_value=0.5),
    dropout_fraction=st.floats(min_value=0.0, max_value=0.3),
    min_colluders=st.integers(min_value=0, max_value=5),
    require_active=st.booleans(),
    backends=st.sampled_from([("secagg",), ("secagg+",), ("secagg", "secagg+", "ckks")]),
    cohort_key=st.sampled_from(["expected_clients", "max_clients"]),
)
def test_refused_exactly_when_no_round_it_takes_is_private(
    cohort: int,
    corrupt_fraction: float,
    dropout_fraction: float,
    min_colluders: int,
    require_active: bool,
    backends: tuple[str, ...],
    cohort_key: str,
) -> None:
    assumptions = {
        "semi_malicious": require_active,
        "corrupt_fraction": corrupt_fraction,
        "dropout_fraction": dropout_fraction,
        "min_colluders": min_colluders,
    }
    try:
        BranchPolicy(
            backends=backends,
            require_active=require_active,
            corrupt_fraction=corrupt_fraction,
            dropout_fraction=dropout_fraction,
            min_colluders=min_colluders,
            **{cohort_key: cohort},
        )
    except ContradictoryPolicy:
        for size in range(2, cohort + 1):
            degrees = range(2, size - 1, 2) if size <= SPARSE_UP_TO else ()
            for degree in (size - 1, *degrees):
                assert minimum_threshold(size, degree, **assumptions) is None, (size, degree)
    else:
        assert minimum_threshold(cohort, cohort - 1, **assumptions) is not None
