"""``PrivacyAccountant.reference_epsilon`` takes a sampled round's PLD from the cache,
and gives the figure it gave when it rebuilt that PLD, bit for bit.

``audit verify`` falls back to :meth:`~secagg.dp.running_accountant.PrivacyAccountant.
reference_epsilon` for a central row whose claim lies above its replay, once per such
row. It built the whole history as one dp_accounting event through a fresh PLD
accountant, and so rebuilt the round's Poisson-sampled Gaussian PLD with
``from_gaussian_mechanism`` on every call: 0.55 s of its 0.7-1.0 s of CPU at z = 1.1,
q = 0.5. :data:`secagg.dp.pld_composition._sampled_pld` already holds that PLD, with the
library's pmfs bit for bit; the from-scratch figure now composes it exactly as the
library's accountant does. The old computation is kept here (:func:`_old_reference`) as
the oracle: a figure that moved in its last bit would move a verdict on a ledger.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import dp_accounting
import numpy as np
from dp_accounting import pld
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp import pld_composition, running_accountant
from secagg.dp.accounting_core import PLD_VALUE_DISCRETIZATION
from secagg.dp.running_accountant import PrivacyAccountant

#: grids ten and a hundred times coarser than the default, for all but one test: the same
#: code paths (the FFT self-composition, the epsilon walk) at a tenth of the points or
#: less, so that the library's own build in the oracle stays cheap; the coarser one
#: also gives the sparse pmfs of dp_accounting that the default grid gives at high noise
COARSE = 10 * PLD_VALUE_DISCRETIZATION
COARSER = 100 * PLD_VALUE_DISCRETIZATION

Z, Q, DELTA = 1.1, 0.5, 1e-5  # the ledger tests' and bench_verify_tampered.py's rounds


def _old_reference(
    accountant: PrivacyAccountant, discretization: float = PLD_VALUE_DISCRETIZATION
) -> float:
    """``reference_epsilon`` before the cache: the history as one event through a fresh
    dp_accounting accountant, which builds every round's PLD itself."""
    if not accountant._runs:
        return 0.0
    parts = [
        dp_accounting.SelfComposedDpEvent(kind.event(accountant.accountant), count)
        for kind, count in accountant._runs
    ]
    event = parts[0] if len(parts) == 1 else dp_accounting.ComposedDpEvent(parts)
    if accountant.accountant == "rdp":
        fresh: Any = dp_accounting.rdp.RdpAccountant()
    else:
        fresh = pld.PLDAccountant(value_discretization_interval=discretization)
    return float(fresh.compose(event).get_epsilon(accountant.delta))


@contextmanager
def _grid(discretization: float) -> Iterator[None]:
    """``reference_epsilon`` on the grid ``discretization`` (the default otherwise)."""
    on_grid = functools.partial(
        pld_composition._reference_pld_epsilon, discretization=discretization
    )
    with mock.patch.object(running_accountant, "_reference_pld_epsilon", on_grid):
        yield


@contextmanager
def _counting_sampled_builds() -> Iterator[list[float]]:
    """The sampling rates of every PLD ``from_gaussian_mechanism`` builds, while open."""
    rates: list[float] = []
    library = pld.privacy_loss_distribution.from_gaussian_mechanism

    def counted(*args: Any, **kwargs: Any) -> Any:
        rates.append(kwargs.get("sampling_prob", 1.0))
        return library(*args, **kwargs)

    with mock.patch.object(pld.privacy_loss_distribution, "from_gaussian_mechanism", counted):
        yield rates


def _history(runs: list[tuple[float, float, float | None, int]], delta: float) -> PrivacyAccountant:
    accountant = PrivacyAccountant(delta, "pld")
    for z, q, sigma_b, count in runs:
        for _ in range(count):
            accountant.step(z, q, count_noise_stddev=sigma_b)
    return accountant


def test_the_ledger_rounds_figure_on_the_default_grid_is_the_old_one_bit_for_bit() -> None:
    """Unpatched, on the grid the ledgers' claims were computed on (13.104732735372588
    with dp_accounting 0.6.0 when this was written; 3.1006021756118125 at 1 round,
    34.314458029871844 at 100, measured alike)."""
    accountant = _history([(Z, Q, None, 20)], DELTA)
    assert accountant.reference_epsilon() == _old_reference(accountant)


def test_the_from_scratch_figure_does_not_rebuild_the_rounds_pld() -> None:
    """Before: one ``from_gaussian_mechanism(sampling_prob=0.5)`` per call, 0.55 s of
    CPU, though the replay had just built the round's PLD (``epsilon``); the default
    grid, unpatched, as ``audit verify`` calls it."""
    accountant = _history([(Z, Q, None, 3)], DELTA)
    accountant.epsilon()  # what the replay computes first (the round's PLD, cached)
    with _counting_sampled_builds() as rates:
        first = accountant.reference_epsilon()
        second = accountant.reference_epsilon()
    assert [rate for rate in rates if rate < 1.0] == []
    assert first == second


def test_a_mixed_history_is_the_old_figure() -> None:
    """Full participation, an adaptive round, two sampled kinds, a kind come back: each
    event the history's one event holds, in one composition."""
    accountant = _history(
        [(Z, Q, None, 2), (2.0, 1.0, None, 3), (1.5, 0.2, 4.0, 2), (Z, Q, None, 1)], DELTA
    )
    with _grid(COARSE):
        figure = accountant.reference_epsilon()
    assert figure == _old_reference(accountant, COARSE)


_RUN = st.tuples(
    st.floats(0.8, 5.0),  # z (lower: a grid of seconds at 50 full-participation rounds)
    st.one_of(st.just(1.0), st.floats(1e-3, 0.99)),  # q: full participation or sampled
    st.one_of(st.none(), st.floats(2.0, 20.0)),  # adaptive clipping's count noise
    st.integers(1, 20),  # rounds in the run
)


@settings(max_examples=25)
@given(
    runs=st.lists(_RUN, min_size=1, max_size=3).filter(
        lambda runs: sum(run[3] for run in runs) <= 50
    ),
    delta=st.floats(1e-9, 1e-3),
    grid=st.sampled_from([COARSE, COARSER]),
)
def test_any_history_gives_the_old_figure_bit_for_bit(
    runs: list[tuple[float, float, float | None, int]], delta: float, grid: float
) -> None:
    accountant = _history(runs, delta)
    with _grid(grid):
        figure = accountant.reference_epsilon()
    assert figure == _old_reference(accountant, grid)


def test_a_round_above_the_size_limit_takes_the_librarys_own_build_and_figure() -> None:
    """A ledger's history is not sized as it is read (``from_history``): a round the
    cache would refuse with PldTooLarge is built by the library, as before."""
    accountant = _history([(Z, Q, None, 4)], DELTA)
    with (
        _grid(COARSE),
        mock.patch.object(pld_composition, "MAX_PLD_POINTS", 10),
        _counting_sampled_builds() as rates,
    ):
        figure = accountant.reference_epsilon()
    assert rates == [Q]
    assert figure == _old_reference(accountant, COARSE)


def test_the_cached_pld_is_left_as_it_was() -> None:
    """The cache is shared with the running accountants: composing from it must not
    change it (the library's compositions return new pmfs)."""
    accountant = _history([(Z, Q, None, 5)], DELTA)
    with _grid(COARSE):
        accountant.reference_epsilon()
        cached = pld_composition._sampled_pld(Z, Q, COARSE)
        sides = (cached._pmf_remove, cached._pmf_add)
        before = [np.array(pmf._probs, copy=True) for pmf in sides]
        again = accountant.reference_epsilon()
    after = [pmf._probs for pmf in sides]
    assert all(np.array_equal(old, new) for old, new in zip(before, after, strict=True))
    assert again == _old_reference(accountant, COARSE)


def test_rdp_is_the_old_figure() -> None:
    """RDP's from-scratch figure is the library's as before (full participation: the
    sampled curve costs half a second, and this only checks the dispatch)."""
    accountant = PrivacyAccountant(DELTA, "rdp")
    for _ in range(3):
        accountant.step(Z, 1.0)
    assert accountant.reference_epsilon() == _old_reference(accountant)
