"""Distributed DP under ``dp.epsilon_budget`` with fixed sampling (``sampling.count``).

A fixed-count draw takes at most ``sampling.count`` clients, so no round of such a run
holds more honest noise shares than ``count`` less the population's colluders. The
server's best case of one more round (before each draw, :meth:`_budget_spent`; at a
reveal that would cross the budget, :meth:`_reveal_past_budget`; and the config's
refusal of a budget no round fits) asked for a round of *every* client, which such a run
never draws. With a budget that a round of all 8 fits and no round of 4 does, the server
drew rounds of 4, ran each to its reveal and aborted it there, saying "not the budget's
end (a round of every client with every contribution fits)", until
``max_consecutive_aborts``, and every branch that keeps its own budget charged itself
for each (second review of the budget path, 2026-12-07: the run was to stop at the
budget before the draw, as it does once an excluded branch leaves too few).

The oracle: the epsilons are the DDG accountant's own (the mechanism's
``epsilon_after_next``), at the honest share counts the mechanism's rule gives.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path

import pytest
from _budget_reveal import SessionAtTheReveal, UnmaskWatchingHub, start_clients
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import ToParty
from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

DP = {"mechanism": "distributed", "noise_multiplier": 2.0, "clip": 1.0, "delta": 1e-3}


def _names(clients: int) -> list[str]:
    return [f"branch-{i:02d}" for i in range(clients)]


def _config(clients: int, count: int, budget: float | None, rounds: int = 3) -> FederationConfig:
    dp = DP if budget is None else DP | {"epsilon_budget": budget}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warnings
        return FederationConfig.from_dict(
            {
                "federation": {
                    "name": "fixed",
                    "clients": _names(clients),
                    "dimension": 4,
                    "rounds": rounds,
                },
                "sampling": {"kind": "fixed", "count": count},
                "backend": {"name": "secagg+", "value_bound": 1.0},
                "dp": dp,
                "deadlines": {"phase_seconds": 90.0},
            }
        )


def _first_round(clients: int, count: int, contributors: int | None = None) -> tuple[float, float]:
    """The epsilon of a first round of ``count`` drawn clients (``contributors`` of them
    contributing; all by default), and of one of every client (what no draw takes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mechanism = _config(clients, count, None).mechanism()
    drawn = mechanism.epsilon_after_next(
        contributors=count if contributors is None else contributors, participants=count
    )
    everyone = mechanism.epsilon_after_next(contributors=clients, participants=None)
    assert drawn is not None and everyone is not None
    return drawn, everyone


@settings(max_examples=25, deadline=None)
@given(
    clients=st.integers(6, 12),
    count_from_top=st.integers(1, 4),
    lost=st.integers(0, 1),
    where=st.floats(0.05, 0.95),
)
def test_a_budget_no_drawable_round_fits_stops_the_run(
    clients: int, count_from_top: int, lost: int, where: float
) -> None:
    """Whatever the population, the fixed count below it, the dropouts at the reveal
    and where the budget lies between a first round of ``count`` and one of every
    client: the draw's check stops the run before any draw (its "at least" figure that
    of a round of ``count``, never above it), the config refuses such a budget at start,
    and a round of ``count`` that reaches its reveal stops the run there too, never
    "not the budget's end" (every drawable round would cross it)."""
    count = max(2, clients - count_from_top)
    drawn, everyone = _first_round(clients, count)
    if not everyone < drawn:
        return  # the population's colluders cost the sampled round nothing here
    budget = everyone + where * (drawn - everyone)
    config = _config(clients, count, budget)
    with pytest.raises(ConfigurationError, match="below the epsilon of a single round"):
        config.refuse_budget_below_one_round()
    participants = _names(clients)[:count]
    with tempfile.TemporaryDirectory() as folder:
        store = ServerStore(Path(folder) / "s.sqlite")
        server = FederationServer(config, InProcessHub(), store)
        assert server._budget_spent()
        stop = server.budget_reached
        assert stop is not None and "one more round would bring epsilon to at least" in stop
        figure = float(stop.split("at least ")[1].split(";")[0])
        assert budget < figure <= drawn
        server.budget_reached = None  # as if a round had been drawn all the same
        store.begin_round(1, participants)
        session = SessionAtTheReveal(count - lost)
        requests = [ToParty(0, b"unmasking request")]
        out = server._hold_at_budget(1, session, participants, requests)  # type: ignore[arg-type]
        noted = (store.rounds()[0]["report"] or {}).get("revealed")
        store.close()
    assert out == ["abort messages"] and noted is None
    assert session.aborted is not None and "not the budget's end" not in session.aborted
    if math.isinf(_first_round(clients, count, contributors=count - lost)[0]):
        assert "no honest noise share" in session.aborted  # refused whatever the budget
    else:
        assert server.budget_reached is not None, session.aborted


@settings(max_examples=15, deadline=None)
@given(clients=st.integers(6, 12), count_from_top=st.integers(1, 4))
def test_a_short_round_of_the_count_goes_on_while_a_full_one_fits(
    clients: int, count_from_top: int
) -> None:
    """The other side: a round of ``count`` that lost one share before its masked
    input, where a round of ``count`` with every share fits, is aborted unrevealed and
    uncharged and the run goes on; its reason names the round that fits (``count``
    clients), not one of every client."""
    count = max(2, clients - count_from_top)
    full, _ = _first_round(clients, count)
    short, _ = _first_round(clients, count, contributors=count - 1)
    if not full < short < math.inf:
        return  # one share fewer costs nothing more here, or leaves no honest share
    config = _config(clients, count, (full + short) / 2)
    participants = _names(clients)[:count]
    with tempfile.TemporaryDirectory() as folder:
        store = ServerStore(Path(folder) / "s.sqlite")
        server = FederationServer(config, InProcessHub(), store)
        assert not server._budget_spent(), server.budget_reached
        store.begin_round(1, participants)
        session = SessionAtTheReveal(count - 1)
        out = server._hold_at_budget(1, session, participants, [ToParty(0, b"request")])  # type: ignore[arg-type]
        store.close()
    assert out == ["abort messages"]
    assert server.budget_reached is None, server.budget_reached
    reason = session.aborted or ""
    assert "not the budget's end" in reason
    assert f"a round of {count} clients with every contribution fits" in reason, reason


def test_a_fixed_count_run_past_its_budget_runs_no_round(tmp_path: Path) -> None:
    """8 branches, rounds of 4, a budget a round of all 8 fits and a round of 4 does
    not: before, the server ran rounds of 4 to their reveal and aborted each ("2 rounds
    aborted in a row" here; every branch in them trained and sent its noise share); now
    it stops at the budget before the first draw, saying so, and no round runs."""
    drawn, everyone = _first_round(8, 4)
    assert everyone < drawn
    budget = (drawn + everyone) / 2
    hub = UnmaskWatchingHub()
    start_clients(hub, _names(8))
    server = FederationServer(_config(8, 4, budget), hub, ServerStore(tmp_path / "s.sqlite"))
    results = server.run(wait_for_clients=90, max_consecutive_aborts=2)
    assert results == [], [(r.status, r.reason) for r in results]
    assert server.budget_reached is not None
    assert server.stop_reason == server.budget_reached
    assert "one more round would bring epsilon to at least" in server.budget_reached
    assert not hub.unmasked_rounds
    assert server.mechanism.accountant.rounds == 0  # type: ignore[attr-defined]
