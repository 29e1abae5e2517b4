"""Distributed DP under ``dp.epsilon_budget``: a round whose noise shares fall short.

With client-level distributed DP the server's sight of the unmasked sum is the release,
so a round is charged at the honest noise shares it kept. A round that loses a branch
after the round started but before its masked input (its noise share never reaches the
sum) is charged more, and (the DDG accountant composes every round at the worst per-round
bound) can cross a budget that the rounds with every share fit.

Such a round must be aborted unrevealed and uncharged (no unmasking request leaves), and
the run must go on while a round of every client with every share still fits; it stops,
saying why, only once even such a round would cross the budget. Before (review of the
budget path, 2026-12-07) the one short round stopped the whole federation
(``budget_reached``) with rounds still to run that fit; and until its second review that
day, so did a round whose cohort lacked a branch absent at the draw.

The oracle: the epsilons are the DDG accountant's own (one call each), at the honest
share counts the mechanism's rule gives; the ledger's replay (``audit verify``) must
agree with the figure the run reports.
"""

from __future__ import annotations

import copy
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _budget_reveal import SessionAtTheReveal, UnmaskWatchingHub, start_clients
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import ToParty
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.protocol import decode
from secagg.protocol.messages import MaskedInput
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Leave, Relay, decode_message, encode_message
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(8)]  # SecAgg+ k = 4, t = 3: one dropout is fine
DELTA = 1e-3
DP = {"mechanism": "distributed", "noise_multiplier": 2.0, "clip": 1.0, "delta": DELTA}
#: the attempt (1-based, counted by the leaving branch) whose masked input it withholds
SHORT_ATTEMPT = 3


def _config(rounds: int, budget: float | None = None) -> FederationConfig:
    dp = DP if budget is None else DP | {"epsilon_budget": budget}
    return FederationConfig.from_dict(
        {
            "federation": {"name": "short", "clients": NAMES, "dimension": 4, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": dp,
            # a phase closes once everyone still in it answered: a generous bound
            "deadlines": {"phase_seconds": 60.0},
        }
    )


def _epsilon(honest_counts: list[int]) -> float:
    """The DDG accountant's epsilon for rounds of these honest share counts."""
    accountant = copy.deepcopy(_config(1).mechanism().accountant)  # type: ignore[attr-defined]
    for count in honest_counts:
        accountant.step(count)
    return float(accountant.epsilon())


def _honest(contributors: int, participants: int = 8) -> int:
    charge = (
        _config(1)
        .mechanism()
        .charge_at_reveal(contributors=contributors, participants=participants)
    )
    assert charge is not None
    return int(charge["noise_contributors"])


class LeavesBeforeMaskedInput:
    """A branch that, in its ``attempt``-th round, leaves instead of sending its masked
    input (its noise share never reaches the sum) and stays for later rounds."""

    def __init__(self, inner: Any, attempt: int) -> None:
        self._inner = inner
        self._attempt = attempt
        self._rounds: list[int] = []

    def send(self, payload: bytes) -> None:
        message = decode_message(payload)
        if isinstance(message, Relay) and isinstance(decode(message.payload), MaskedInput):
            if message.round not in self._rounds:
                self._rounds.append(message.round)
            if len(self._rounds) == self._attempt:
                self._inner.send(encode_message(Leave(message.round, "test: left")))
                return
        self._inner.send(payload)

    def receive(self, timeout: float | None) -> bytes | None:
        return self._inner.receive(timeout)


def _start_clients(
    hub: InProcessHub, leaver_attempt: int | None, names: list[str] = NAMES
) -> list[threading.Thread]:
    def endpoint_for(name: str, endpoint: Any) -> Any:
        if name == NAMES[3] and leaver_attempt is not None:
            return LeavesBeforeMaskedInput(endpoint, leaver_attempt)
        return endpoint

    return start_clients(hub, names, endpoint_for)


def _budget() -> tuple[float, int, int]:
    """A budget that three full rounds fit and that two full rounds and one short one
    (one share fewer) cross, and that a fourth full round crosses too."""
    full, short = _honest(8), _honest(7)
    assert short < full
    three_full = _epsilon([full] * 3)
    two_full_one_short = _epsilon([full, full, short])
    assert two_full_one_short > three_full, "the short round must cost more"
    budget = (three_full + two_full_one_short) / 2
    assert _epsilon([full] * 4) > budget, "a fourth full round must cross the budget"
    return budget, full, short


def _statuses(results: list[RoundResult]) -> list[str]:
    return [r.status for r in results]


def test_a_short_round_is_aborted_unrevealed_and_the_run_goes_on(tmp_path: Path) -> None:
    budget, full, _ = _budget()
    hub = UnmaskWatchingHub()
    _start_clients(hub, SHORT_ATTEMPT)
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    server = FederationServer(
        _config(rounds=4, budget=budget), hub, ServerStore(tmp_path / "s.sqlite"), ledger=ledger
    )
    results = server.run(wait_for_clients=120)
    ledger.close()
    assert _statuses(results) == ["complete", "complete", "aborted", "complete"], [
        (r.status, r.reason) for r in results
    ]
    short = results[2]
    assert "epsilon budget" in (short.reason or "") and "unrevealed" in (short.reason or "")
    # nothing of the short round was revealed, and nothing of it charged
    assert short.number not in hub.unmasked_rounds
    assert {r.number for r in results if r.status == "complete"} <= hub.unmasked_rounds
    accountant = server.mechanism.accountant  # type: ignore[attr-defined]
    assert accountant.honest_shares == [full] * 3
    # the run stopped only when even a full round would cross, and says so
    assert server.budget_reached is not None
    assert "one more round would bring epsilon to at least" in server.budget_reached
    claimed = results[-1].epsilon
    assert claimed is not None and claimed <= budget
    assert claimed == pytest.approx(_epsilon([full] * 3), rel=1e-12)
    verified = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert verified.ok, verified.first_failure
    assert verified.epsilons[-1][1] == pytest.approx(claimed, rel=1e-12)


def test_a_restart_after_the_short_round_resumes_uncharged(tmp_path: Path) -> None:
    """The short round leaves nothing to a restart: the restarted server has the full
    rounds' charges only, runs the round that still fits, and its ledger verifies."""
    budget, full, _ = _budget()
    state, ledger_path = tmp_path / "s.sqlite", tmp_path / "ledger.sqlite"
    key = LedgerKey.generate()
    hub = UnmaskWatchingHub()
    _start_clients(hub, SHORT_ATTEMPT)
    ledger = Ledger(ledger_path, key)
    server = FederationServer(
        _config(rounds=4, budget=budget), hub, ServerStore(state), ledger=ledger
    )
    results = server.run(wait_for_clients=120, max_attempts=SHORT_ATTEMPT)
    ledger.close()
    assert _statuses(results) == ["complete", "complete", "aborted"]
    assert server.budget_reached is None, server.budget_reached  # not a stop of the run
    assert server.stop_reason == f"{SHORT_ATTEMPT} rounds attempted (max_attempts)"
    # its reason, in the ledger row, promises no next round: this one was the run's last
    short = results[-1].reason or ""
    assert "not the budget's end" in short and "goes on" not in short, short

    hub = UnmaskWatchingHub()
    _start_clients(hub, leaver_attempt=None)
    ledger = Ledger(ledger_path, key)
    restarted = FederationServer(
        _config(rounds=4, budget=budget), hub, ServerStore(state), ledger=ledger
    )
    accountant = restarted.mechanism.accountant  # type: ignore[attr-defined]
    assert accountant.honest_shares == [full] * 2
    again = restarted.run(wait_for_clients=120)
    ledger.close()
    assert _statuses(again) == ["complete"]
    assert accountant.honest_shares == [full] * 3
    assert restarted.budget_reached is not None and restarted.completed_rounds() == 3
    claimed = again[-1].epsilon
    assert claimed is not None and claimed <= budget
    verified = verify_ledger(ledger_path, key.public_key)
    assert verified.ok, verified.first_failure
    assert verified.epsilons[-1][1] == pytest.approx(claimed, rel=1e-12)


class DrawsWithout(UnmaskWatchingHub):
    """A hub whose ``connected()`` leaves out ``hidden``: the server's draw does not see
    those branches, as it does not see a branch whose session dropped just before it
    (reconnecting) or one benched for missed rounds. Their clients keep running."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: set[str] = set()

    def connected(self) -> set[str]:
        return super().connected() - self.hidden


def test_a_cohort_without_one_branch_at_the_draw_does_not_stop_the_run(tmp_path: Path) -> None:
    """Second review of the budget path (2026-12-07): a round whose *cohort* lacked one
    branch (absent at its draw; every share of the 7 in) stopped the whole federation
    (``budget_reached``), although its epsilon is that of a round of 8 that lost one
    share before its masked input, which goes on, and the next round of all 8 fitted. So
    one branch, reconnecting or benched at one draw, could stop the server. Now that
    round is aborted unrevealed and uncharged and round 4, with every branch, runs."""
    full, of_seven = _honest(8), _honest(7, participants=7)
    assert of_seven < full
    budget = (_epsilon([full] * 3) + _epsilon([full, full, of_seven])) / 2
    assert _epsilon([full] * 3) < budget < _epsilon([full, full, of_seven])
    assert _epsilon([full] * 4) > budget, "a fourth full round must cross the budget"
    hub = DrawsWithout()
    _start_clients(hub, leaver_attempt=None)

    def absent_at_the_third_draw(result: RoundResult, model: np.ndarray) -> None:
        hub.hidden = {NAMES[3]} if result.number == 2 else set()

    server = FederationServer(
        _config(rounds=4, budget=budget),
        hub,
        ServerStore(tmp_path / "s.sqlite"),
        observer=absent_at_the_third_draw,
    )
    results = server.run(wait_for_clients=120)
    assert _statuses(results) == ["complete", "complete", "aborted", "complete"], [
        (r.status, r.reason) for r in results
    ]
    short = results[2]
    assert NAMES[3] not in short.participants and len(short.participants) == 7
    assert short.reason is not None and "unrevealed and uncharged" in short.reason
    assert "a cohort of 7 of the 8 clients" in short.reason
    assert "not the budget's end" in short.reason
    assert short.number not in hub.unmasked_rounds
    assert server.mechanism.accountant.honest_shares == [full] * 3  # type: ignore[attr-defined]
    assert server.budget_reached is not None
    assert "one more round would bring epsilon to at least" in server.budget_reached


def test_a_branch_that_never_comes_aborts_rounds_until_max_consecutive_aborts(
    tmp_path: Path,
) -> None:
    """One branch never connects, so every cohort is 7 of the 8 clients, and the budget
    fits a round of all 8 but not one of 7 with every share. Each round is aborted
    unrevealed and uncharged, and the run ends at ``max_consecutive_aborts``, not at the
    budget: the branch may yet come (until the second review of 2026-12-07 the first
    such round stopped the federation as if its budget were spent). Nothing of any
    round is unmasked or charged."""
    full_of_eight, full_of_seven = _honest(8), _honest(7, participants=7)
    assert _honest(6, participants=7) <= full_of_seven < full_of_eight
    best, cohort = _epsilon([full_of_eight]), _epsilon([full_of_seven])
    assert best < cohort
    hub = UnmaskWatchingHub()
    _start_clients(hub, leaver_attempt=1, names=NAMES[:7])
    server = FederationServer(
        _config(rounds=3, budget=(best + cohort) / 2), hub, ServerStore(tmp_path / "s.sqlite")
    )
    results = server.run(wait_for_clients=0, max_consecutive_aborts=2)
    assert _statuses(results) == ["aborted", "aborted"], [(r.status, r.reason) for r in results]
    assert server.budget_reached is None, server.budget_reached
    assert server.stop_reason == "2 rounds aborted in a row"
    assert "6 of 7 contributions (a cohort of 7 of the 8 clients)" in (results[0].reason or "")
    assert "7 of 7 contributions (a cohort of 7 of the 8 clients)" in (results[1].reason or "")
    assert all("unrevealed and uncharged" in (r.reason or "") for r in results)
    assert not hub.unmasked_rounds
    assert server.mechanism.accountant.rounds == 0  # type: ignore[attr-defined]


class _Accusations:
    """A finished round's session as :meth:`FederationServer._take_accusations` reads
    it: who named whom as the sender of shares that did not open."""

    def __init__(self, accused: dict[int, frozenset[int]]) -> None:
        self._accused = accused

    def accusations(self) -> dict[int, frozenset[int]]:
        return self._accused


def test_an_excluded_branch_stops_the_run_at_the_budget_before_the_draw(tmp_path: Path) -> None:
    """Second review of the budget path (2026-12-07): with one branch excluded from
    rounds for good (accused by two others; the state keeps it), the draw's check still
    asked whether a round of all 8 clients fitted, which no later round can be. So with
    a budget that 8 shares fit and 7 do not, the server drew 7 round after round, each
    run to its reveal and aborted there (every branch that keeps its own budget charging
    itself for each), until ``max_consecutive_aborts``. Now the clients a round may
    still draw are the best case: the run stops at the budget before any round, saying
    so, and nothing is unmasked or charged."""
    full, of_seven = _honest(8), _honest(7, participants=7)
    best, left = _epsilon([full]), _epsilon([of_seven])
    assert best < left
    budget = (best + left) / 2
    hub = UnmaskWatchingHub()
    _start_clients(hub, leaver_attempt=None)
    server = FederationServer(_config(rounds=2, budget=budget), hub, ServerStore(tmp_path / "s"))
    accused, accusers = NAMES.index(NAMES[3]), frozenset({0, 1})
    server._take_accusations(_Accusations({accused: accusers}), NAMES)  # type: ignore[arg-type]
    assert server.excluded() == {NAMES[3]}
    results = server.run(wait_for_clients=120, max_consecutive_aborts=2)
    assert results == [], [(r.status, r.reason) for r in results]
    assert server.budget_reached is not None
    assert "one more round would bring epsilon to at least" in server.budget_reached
    figure = float(server.budget_reached.split("at least ")[1].split(";")[0])
    assert budget < figure <= left
    assert not hub.unmasked_rounds
    assert server.mechanism.accountant.rounds == 0  # type: ignore[attr-defined]


COHORT_NAMES = [f"branch-{i:02d}" for i in range(12)]


@settings(max_examples=30, deadline=None)
@given(
    cohort=st.integers(4, 12),
    lost=st.integers(0, 4),
    earlier_rounds=st.integers(0, 3),
    budget_scale=st.floats(0.5, 2.0),
)
def test_the_reveal_decision_under_a_budget(
    cohort: int, lost: int, earlier_rounds: int, budget_scale: float
) -> None:
    """Whatever the cohort, the dropouts before the masked inputs, the rounds already
    charged and the budget: a sum is revealed only at an epsilon within the budget (and
    charged at it); any other is aborted with nothing noted or charged; and the run
    stops (``budget_reached``) only when a round of every client (12) with every share
    would cross too, whatever the cohort drawn (before the second review of 2026-12-07:
    when this cohort with every share would), its reason's "at least" figure never above
    the epsilon it names."""
    contributors = max(0, cohort - lost)
    participants = COHORT_NAMES[:cohort]
    probe = _cohort_config(None).mechanism()
    everyone = _honest_in(probe, 12, 12)
    for _ in range(earlier_rounds):
        probe.accountant.step(everyone)  # type: ignore[attr-defined]
    with_every_share = probe.epsilon_after_next(contributors=cohort, participants=cohort)
    # the design's best round: every client, every share (what the draw's check asks)
    best_round = probe.epsilon_after_next(contributors=12, participants=None)
    assert best_round is not None
    after = probe.epsilon_after_next(contributors=contributors, participants=cohort)
    assert with_every_share is not None and after is not None
    budget = with_every_share * budget_scale
    with tempfile.TemporaryDirectory() as folder:
        store = ServerStore(Path(folder) / "s.sqlite")
        server = FederationServer(_cohort_config(budget), InProcessHub(), store)
        accountant = server.mechanism.accountant  # type: ignore[attr-defined]
        for _ in range(earlier_rounds):
            accountant.step(everyone)
        store.begin_round(1, participants)
        session = SessionAtTheReveal(contributors)
        requests = [ToParty(0, b"unmasking request")]
        out = server._hold_at_budget(1, session, participants, requests)  # type: ignore[arg-type]
        noted = (store.rounds()[0]["report"] or {}).get("revealed")
        store.close()
    assert accountant.rounds == earlier_rounds  # the reveal notes a charge, never steps
    if _honest_in(probe, contributors, cohort) == 0:  # no honest share: never revealed
        assert session.aborted is not None and noted is None
        assert server.budget_reached is None
    elif after <= budget:
        assert out == requests and session.aborted is None
        assert noted is not None and noted["epsilon"] == pytest.approx(after, rel=1e-12)
        assert server.budget_reached is None
    else:
        assert out == ["abort messages"] and noted is None
        assert session.aborted is not None and "epsilon budget" in session.aborted
        goes_on = contributors < 12 and best_round <= budget
        assert (server.budget_reached is None) == goes_on, (session.aborted, goes_on)
        figure = session.aborted.split("at least ")[1].split(";")[0]
        assert float(figure) <= after


def _cohort_config(budget: float | None) -> FederationConfig:
    dp = DP if budget is None else DP | {"epsilon_budget": budget}
    return FederationConfig.from_dict(
        {
            "federation": {"name": "decision", "clients": COHORT_NAMES, "dimension": 4},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": dp,
        }
    )


def _honest_in(mechanism: Any, contributors: int, participants: int) -> int:
    charge = mechanism.charge_at_reveal(contributors=contributors, participants=participants)
    return int(charge["noise_contributors"])
