"""What a tampered claim costs ``audit verify``: the from-scratch fallback only where it
can change the verdict.

A central row whose claim does not match the incremental replay is checked against the
from-scratch PLD (:meth:`~secagg.ledger.replay.EpsilonReplay.older_claim`: a row the
code before incremental accounting wrote), 0.7-1 s of CPU a row (measured 2026-12-06,
z = 1.1, q = 0.5: 0.56 s of it building the round's PLD, the rest its self-composition).
On a tampered ledger that was all of the verify's time. A claim *below* its replay by
more than float noise fails whatever that computation gives (the argument is in
:func:`~secagg.ledger.row_checks._below_replay`), so it is no longer computed there.

1. an understated claim fails at its row without the from-scratch computation (before:
   once per verify, and the failing row was counted in ``from_scratch``); an overstated
   one still takes it, and passes when it matches;
2. over random ledgers (sampled and full-participation PLD, RDP; aborted rounds) with
   claims scaled at random rows, and *any* from-scratch figure (the property does not
   rest on how close that figure is to the replay), the verifier gives the same result
   as the one that always consulted the fallback (kept as the oracle below): verdict,
   failure, every replayed figure, notes; ``from_scratch`` differs only on a failed
   ledger, by the failing row the old code counted.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _ledgers import central_dp, ledger_row, write_ledger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import secagg.ledger.verify as verify_module
from secagg.dp.accounting import PrivacyAccountant
from secagg.ledger.verify import AuditResult, verify_ledger

DELTA = 1e-5
MAX_ROUNDS = 5
#: (noise multiplier, sample rate, accountant) of the drawn ledgers: a sampled PLD (the
#: fallback computes the from-scratch figure), full participation under PLD (the
#: fallback's closed-form window, no computation) and RDP
MECHANISMS = ((1.1, 0.5, "pld"), (2.0, 1.0, "pld"), (1.1, 0.5, "rdp"))
#: claim (and from-scratch figure) factors: far off, and at both edges of the
#: tolerance (1e-6 above the replay, 1e-8 below it)
FACTORS = (0.5, 1 - 1e-6, 1 - 2e-8, 1 - 5e-9, 1 + 5e-7, 1 + 2e-6, 1.5)


@functools.cache
def _true_epsilons(z: float, q: float, accountant: str) -> tuple[float, ...]:
    """The cumulative epsilon after 1..MAX_ROUNDS rounds, as the server claimed it."""
    running = PrivacyAccountant(DELTA, accountant)
    out = []
    for _ in range(MAX_ROUNDS):
        running.step(z, q)
        out.append(running.epsilon())
    return tuple(out)


def _rows(
    mechanism: tuple[float, float, str], complete: list[bool], factors: list[float | None]
) -> list[dict[str, Any]]:
    """Central rows as the code before per-client charging wrote them (the rows the
    fallback is for), each claim scaled by its factor (None: as written)."""
    z, q, accountant = mechanism
    dp = central_dp(
        z, DELTA, accountant=accountant, sample_rate=q,
        sampling={"kind": "poisson", "rate": q, "population": 20, "seeded": False},
    )  # fmt: skip
    epsilons = _true_epsilons(z, q, accountant)
    rows, charged = [], 0
    for number, (done, factor) in enumerate(zip(complete, factors, strict=True), start=1):
        charged += done
        claim = epsilons[charged - 1] if charged else None
        if claim is not None and factor is not None:
            claim *= factor
        changes: dict[str, Any] = {} if done else {"status": "aborted", "reason": "too few"}
        rows.append(ledger_row(number, dp, claim, **changes))
    return rows


@contextmanager
def _from_scratch_figure(factor: float, calls: list[int]) -> Iterator[None]:
    """Every from-scratch computation gives the replay's figure times ``factor`` (and
    is counted by its rounds): any figure, at no cost."""

    def figure(self: PrivacyAccountant) -> float:
        calls.append(self.rounds)
        return self.epsilon() * factor

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PrivacyAccountant, "reference_epsilon", figure)
        yield


def _verify_as_before(path: Path, public_key: bytes) -> AuditResult:
    """The verifier before this change: every claim that does not match its replay,
    below it too, is checked against the from-scratch figure."""
    with pytest.MonkeyPatch.context() as patch:
        # raising=False: against the code before the change, which has no such check
        never = lambda claimed, recomputed: False  # noqa: E731
        patch.setattr(verify_module, "_below_replay", never, raising=False)
        return verify_ledger(path, public_key)


def test_an_understated_claim_fails_without_the_from_scratch_computation(
    tmp_path: Path,
) -> None:
    """Every claim halved (the figure a server hiding its spend would print), and a
    from-scratch figure that matches it: the row fails as before, without computing it."""
    rows = _rows(MECHANISMS[0], [True] * 4, [0.5] * 4)
    path, key = write_ledger(tmp_path / "halved.sqlite", rows)
    calls: list[int] = []
    with _from_scratch_figure(0.5, calls):
        result = verify_ledger(path, key.public_key)
        before = _verify_as_before(path, key.public_key)
    assert result.first_failure == before.first_failure
    assert result.first_failure is not None
    assert result.first_failure.startswith("row 1 (round 1): claims epsilon ")
    assert result.first_failure.endswith("(the claim is below the mechanism's)")
    assert calls == [1]  # the old verifier's one computation; none for the new one
    assert (result.from_scratch, before.from_scratch) == (0, 1)


def test_an_overstated_claim_still_takes_the_from_scratch_fallback(tmp_path: Path) -> None:
    """A claim above its replay may be the older code's: checked against that figure,
    and verified when it matches (the fallback this change keeps)."""
    rows = _rows(MECHANISMS[0], [True] * 3, [None, None, 1.5])
    path, key = write_ledger(tmp_path / "above.sqlite", rows)
    calls: list[int] = []
    with _from_scratch_figure(1.5, calls):
        result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert calls == [3] and result.from_scratch == 1


def _same_result(new: AuditResult, old: AuditResult) -> None:
    assert dataclasses.replace(new, from_scratch=0) == dataclasses.replace(old, from_scratch=0)
    assert new.not_private_reasons() == old.not_private_reasons()
    if new.ok:
        assert new.from_scratch == old.from_scratch
    else:  # the failing row, counted before as matching the from-scratch code
        assert old.from_scratch - new.from_scratch in (0, 1)


_ledgers = st.integers(1, MAX_ROUNDS).flatmap(
    lambda n: st.tuples(
        st.sampled_from(MECHANISMS),
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.none() | st.sampled_from(FACTORS), min_size=n, max_size=n),
    )
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ledger=_ledgers, figure=st.sampled_from((1.0, *FACTORS)))
def test_the_verifier_gives_what_the_always_falling_back_one_gave(
    tmp_path: Path, ledger: tuple[Any, list[bool], list[float | None]], figure: float
) -> None:
    mechanism, complete, factors = ledger
    path = tmp_path / "drawn.sqlite"
    for leftover in tmp_path.glob("drawn.sqlite*"):
        leftover.unlink()
    path, key = write_ledger(path, _rows(mechanism, complete, factors))
    calls: list[int] = []
    with _from_scratch_figure(figure, calls):
        new = verify_ledger(path, key.public_key)
        old = _verify_as_before(path, key.public_key)
    _same_result(new, old)
