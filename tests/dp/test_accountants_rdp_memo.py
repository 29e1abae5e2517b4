"""One memo of Opacus's RDP curve, :func:`secagg.dp.accountants.memoise_opacus_rdp`,
used by the trainers (:mod:`secagg.dp.dpsgd` installs it at import), by every
:func:`~secagg.dp.accountants.opacus_epsilon` and so by ``audit verify``.

There were two: the trainers' per-order ``lru_cache`` on ``_compute_rdp`` (untyped,
so 1.5 and ``np.float32(1.5)``, or ``2**600`` and ``2.0**600``, shared an entry
although Opacus computes them differently, and whichever came first answered for
both) and the verifier's curve cache above it. Each check here compares with Opacus's
rdp module loaded afresh from its file: functions no memo wraps."""

from __future__ import annotations

import importlib.util
import threading
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opacus.accountants.analysis import rdp

import secagg.dp.dpsgd  # the trainers: installs the memo at import
import secagg.ledger.replay  # the verifier's replay
import secagg.ledger.verify  # the verifier
from secagg.dp.accountants import opacus_epsilon

DELTA = 1e-5


def _pristine() -> ModuleType:
    """Opacus's rdp module loaded afresh from its file, under another name."""
    spec = importlib.util.spec_from_file_location("_pristine_opacus_rdp", rdp.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(function: Any, **arguments: Any) -> tuple[Any, ...]:
    """What a call gives, bit for bit: its type, dtype and bytes, or the error's type."""
    try:
        value = function(**arguments)
    except ArithmeticError as exc:
        return ("raises", type(exc))
    array = np.asarray(value)
    return (type(value), array.dtype, array.tobytes())


def _forget() -> None:
    """Empty whichever cache sits on Opacus's functions, so the first call of a pair
    is the first the cache sees."""
    for function in (rdp.compute_rdp, rdp._compute_rdp):
        cache = getattr(function, "secagg_memo", function)
        if hasattr(cache, "cache_clear"):
            cache.cache_clear()


#: pairs equal in value (and hash) but not in type, where Opacus's results differ
CONFLATED = [
    # float32 arithmetic against float64
    ({"q": 0.5, "noise_multiplier": 1.5}, {"q": 0.5, "noise_multiplier": np.float32(1.5)}),
    ({"orders": [2.5, 8]}, {"orders": [np.float32(2.5), 8]}),
    # a Python int squares exactly; its float overflows
    *(
        (
            {"q": q, "noise_multiplier": 2**600, "orders": [3, 8]},
            {"q": float(q), "noise_multiplier": 2.0**600, "orders": [3, 8]},
        )
        for q in (0.5, 1)
    ),
    # one order, as a float and as a numpy float (Opacus's scalar branch for both)
    ({"orders": 2.5}, {"orders": np.float64(2.5)}),
]


@pytest.mark.parametrize(("first", "second"), CONFLATED)
def test_arguments_equal_in_value_but_not_type_get_opacus_own_result(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    """Asked in either order, each gets what unmemoised Opacus gives it (before, the
    trainers' untyped per-order cache answered the second with the first's value)."""
    opacus_epsilon("rdp", [(1.1, 0.01, 10)], DELTA)  # the verifier's path: installed
    plain = _pristine().compute_rdp
    base = {"q": 0.3, "noise_multiplier": 1.5, "steps": 3, "orders": [2.5, 8]}
    for order in ((first, second), (second, first)):
        _forget()
        for arguments in order:
            call = base | arguments
            assert _outcome(rdp.compute_rdp, **call) == _outcome(plain, **call), call


def test_one_memo_for_trainers_and_verifier() -> None:
    """The curve cache is the only one: Opacus's per-order function is its own (the
    trainers' cache on it is gone) and the verifier has none of its own."""
    opacus_epsilon("prv", [(1.1, 0.01, 10)], DELTA)
    assert hasattr(rdp.compute_rdp, "secagg_memo")
    assert not hasattr(rdp._compute_rdp, "cache_info")
    assert rdp._compute_rdp is getattr(rdp._compute_rdp, "__wrapped__", rdp._compute_rdp)
    assert not hasattr(secagg.ledger.verify, "memoise_opacus_rdp")
    assert not hasattr(secagg.ledger.replay, "memoise_opacus_rdp")


def test_installing_is_idempotent_and_thread_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight threads install at once: one cache, wrapping Opacus's function once."""
    from secagg.dp.accountants import memoise_opacus_rdp

    pristine = _pristine()
    monkeypatch.setattr(rdp, "compute_rdp", pristine.compute_rdp)  # as if never installed
    barrier = threading.Barrier(8)
    caches: list[Any] = []

    def install() -> None:
        barrier.wait(timeout=60)
        caches.append(memoise_opacus_rdp())

    threads = [threading.Thread(target=install) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(caches) == 8 and all(cache is caches[0] for cache in caches)
    assert memoise_opacus_rdp() is caches[0]
    assert rdp.compute_rdp.secagg_memo is caches[0]
    assert rdp.compute_rdp.__wrapped__ is pristine.compute_rdp  # not a memo of a memo


def test_orders_that_cannot_be_hashed_reach_opacus_whole() -> None:
    """A one-pass iterable of orders, one of them unhashable (a 0-d array): the curve of
    every order, as Opacus computes it (the key consumed the iterable, and Opacus was
    then handed it empty: an empty curve, whose epsilon is no bound at all)."""
    from secagg.dp.accountants import memoise_opacus_rdp

    memoise_opacus_rdp()
    plain = _pristine().compute_rdp
    orders = [2.5, np.array(8.0), 32]
    got = rdp.compute_rdp(q=0.01, noise_multiplier=1.1, steps=3, orders=iter(orders))
    want = plain(q=0.01, noise_multiplier=1.1, steps=3, orders=orders)
    assert len(want) == 3 and np.array_equal(got, want)
    sigma = np.array(1.1)  # unhashable too
    got = rdp.compute_rdp(q=0.01, noise_multiplier=sigma, steps=3, orders=orders)
    assert np.array_equal(got, plain(q=0.01, noise_multiplier=sigma, steps=3, orders=orders))
    with pytest.raises(TypeError):  # Opacus's own refusal of an order that is no order
        rdp.compute_rdp(q=0.01, noise_multiplier=1.1, steps=3, orders=8)


@settings(max_examples=8, deadline=None)
@given(
    accountant=st.sampled_from(["rdp", "prv"]),
    runs=st.lists(
        st.tuples(
            st.sampled_from([0.8, 1.0, 1.3, 4.0]),
            st.sampled_from([1e-3, 0.01, 0.05, 1.0]),
            st.integers(1, 60),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_every_epsilon_is_opacus_own_bit_for_bit(
    accountant: str, runs: list[tuple[float, float, int]]
) -> None:
    from secagg.dp.accountants import memoise_opacus_rdp

    cache = memoise_opacus_rdp()
    memoised = rdp.compute_rdp
    cached = opacus_epsilon(accountant, runs, DELTA)
    assert opacus_epsilon(accountant, runs, DELTA) == cached  # now from the cache
    assert cache.cache_info().hits > 0
    try:
        rdp.compute_rdp = _pristine().compute_rdp  # Opacus's own, nothing cached beneath
        plain = opacus_epsilon(accountant, runs, DELTA)
    finally:
        rdp.compute_rdp = memoised
    assert cached == plain


def test_the_prv_domain_sized_twice_computes_each_curve_once() -> None:
    """opacus_epsilon sizes PRV's domain before Opacus does it again in get_epsilon (to
    refuse a domain past exp's overflow first): the second sizing, and each run's
    one-step bound, are served from the curves the first computed."""
    from secagg.dp.accountants import memoise_opacus_rdp

    cache = memoise_opacus_rdp()
    cache.cache_clear()
    runs = [(1.1 / 3**0.5, 1.0, 1), (1.1, 0.01, 3000), (0.9, 0.02, 500)]
    opacus_epsilon("prv", runs, DELTA)
    info = cache.cache_info()
    assert info.misses == len(runs)  # one curve per (q, z)
    assert info.hits >= 3 * len(runs)  # its one-step bounds, and the second sizing
