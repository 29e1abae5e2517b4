"""``dp.epsilon_budget`` is a hard cap, and a restart charges each past round with the
parameters it ran with (DP review: the budget was not a budget; a restart re-charged
past rounds with the current config).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.dp.accounting import epsilon
from secagg.errors import ConfigurationError
from secagg.protocol import decode
from secagg.protocol.messages import MaskedInput, UnmaskingRequest
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, decode_message
from secagg.transport.base import NotConnected
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(8)]  # SecAgg+ k = 4, t = 3: one dropout is fine
DELTA = 1e-3


def _config(
    rounds: int, dp: dict[str, Any], phase_seconds: float = 30.0, **backend: Any
) -> FederationConfig:
    """A generous phase deadline (a phase closes once everyone answered): only a test
    with a silent branch waits it out, and passes a shorter one."""
    return FederationConfig.from_dict(
        {
            "federation": {"name": "budget", "clients": NAMES, "dimension": 8, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0} | backend,
            "dp": {"clip": 1.0, "delta": DELTA} | dp,
            "deadlines": {"phase_seconds": phase_seconds},
        }
    )


def _clients(hub: InProcessHub, rounds: int | None, mute_masked_input: str | None = None) -> None:
    for name in NAMES:
        endpoint = hub.connect(name)
        transport = MutedMaskedInput(endpoint) if name == mute_masked_input else endpoint
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), transport)  # type: ignore[arg-type]
        # a branch hears nothing in a round it is not sampled for: its idle timer must
        # outlast many rounds of a busy machine (12 of two branches each below)
        threading.Thread(target=_serve_until_gone, args=(client, rounds), daemon=True).start()


def _serve_until_gone(client: FederationClient, rounds: int | None) -> None:
    """The branch's run; a branch whose session the test ended stops quietly."""
    try:
        client.run(idle_timeout=120, rounds=rounds)
    except NotConnected:
        pass


class MutedMaskedInput:
    """A branch that vanishes after sharing its keys (its masked input never arrives):
    its session ends instead, so the server sees it gone at once (a silent branch was
    waited out to the phase deadline: 3 s of the test)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def send(self, payload: bytes) -> None:
        message = decode_message(payload)
        if isinstance(message, Relay) and isinstance(decode(message.payload), MaskedInput):
            self._inner.close()
            return
        self._inner.send(payload)

    def receive(self, timeout: float | None) -> bytes | None:
        return self._inner.receive(timeout)


class WatchingHub(InProcessHub):
    """Records whether the server ever sent an unmasking request."""

    unmasking_sent = False

    def send(self, name: str, payload: bytes) -> None:
        message = decode_message(payload)
        if isinstance(message, Relay) and isinstance(decode(message.payload), UnmaskingRequest):
            self.unmasking_sent = True
        super().send(name, payload)


def test_central_budget_stops_before_the_round_that_would_cross_it(tmp_path: Path) -> None:
    two, three = (epsilon(1.0, 1.0, r, DELTA) for r in (2, 3))
    budget = (two + three) / 2
    config = _config(5, {"noise_multiplier": 1.0, "epsilon_budget": budget})
    hub = InProcessHub()
    _clients(hub, rounds=None)
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    results = server.run(wait_for_clients=120)
    assert [r.status for r in results] == ["complete", "complete"]
    assert results[-1].epsilon is not None and results[-1].epsilon <= budget
    assert server.budget_reached is not None and "epsilon budget" in server.budget_reached
    assert server.mechanism.accountant.rounds == 2  # type: ignore[attr-defined]


def test_distributed_budget_aborts_before_the_server_unmasks(tmp_path: Path) -> None:
    """With distributed DP the unmasked sum is the release: a round whose dropouts would
    take epsilon over the budget is aborted before any unmasking request leaves."""
    dp = {"mechanism": "distributed", "noise_multiplier": 2.0}
    probe = _config(1, dp)
    mechanism = probe.mechanism()
    full = mechanism.epsilon_after_next(contributors=8, participants=8)
    fewer = mechanism.epsilon_after_next(contributors=7, participants=8)
    assert full is not None and fewer is not None and fewer > full
    config = _config(1, dp | {"epsilon_budget": (full + fewer) / 2})
    hub = WatchingHub()
    _clients(hub, rounds=1, mute_masked_input=NAMES[3])
    server = FederationServer(config, hub, ServerStore(tmp_path / "d.sqlite"))
    (result,) = server.run(wait_for_clients=120, max_attempts=1)
    assert result.status == "aborted" and "epsilon budget" in (result.reason or "")
    assert not hub.unmasking_sent
    assert server.mechanism.accountant.rounds == 0  # type: ignore[attr-defined]


def _run_rounds(config: FederationConfig, state: Path, rounds: int) -> FederationServer:
    hub = InProcessHub()
    _clients(hub, rounds=rounds)
    server = FederationServer(config, hub, ServerStore(state))
    assert all(r.status == "complete" for r in server.run(wait_for_clients=120))
    return server


def test_restart_with_a_changed_noise_charges_past_rounds_as_they_ran(tmp_path: Path) -> None:
    """The review: doubling z after a restart dropped the reported epsilon of the same
    rounds from 3.00 to 1.38. Past rounds keep their own z."""
    state = tmp_path / "r.sqlite"
    _run_rounds(_config(2, {"noise_multiplier": 1.0}), state, 2)
    restarted = FederationServer(
        _config(2, {"noise_multiplier": 2.0}), InProcessHub(), ServerStore(state)
    )
    charged = restarted.mechanism.accountant.epsilon()  # type: ignore[attr-defined]
    assert charged == pytest.approx(epsilon(1.0, 1.0, 2, DELTA), rel=1e-9)
    assert charged > epsilon(2.0, 1.0, 2, DELTA) * 1.5


def test_restart_with_changed_distributed_parameters_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "dd.sqlite"
    _run_rounds(_config(1, {"mechanism": "distributed", "noise_multiplier": 1.0}), state, 1)
    with pytest.raises(ConfigurationError, match="distributed-DP parameters changed"):
        FederationServer(
            _config(1, {"mechanism": "distributed", "noise_multiplier": 2.0}),
            InProcessHub(),
            ServerStore(state),
        )


@pytest.mark.parametrize("budget", [0, -1.0, float("inf"), "3"])
def test_bad_budgets_name_the_key(budget: object) -> None:
    with pytest.raises(ConfigurationError, match="epsilon_budget"):
        _config(1, {"noise_multiplier": 1.0, "epsilon_budget": budget})


def test_a_client_at_the_budget_sits_out_while_the_others_go_on(tmp_path: Path) -> None:
    """Each client is charged for the rounds it was in, so the budget is each client's:
    one that has spent it sits out and the federation goes on with the rest (before,
    the whole federation stopped at the round that charged anyone past it)."""
    from secagg.ledger import Ledger, LedgerKey
    from secagg.ledger.verify import verify_ledger

    budget = epsilon(1.0, 1.0, 3, DELTA) * 1.0001  # three rounds of z = 1 per client
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "per-client", "clients": NAMES, "dimension": 8, "rounds": 12},
            "sampling": {"kind": "fixed", "count": 2},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": {"clip": 1.0, "delta": DELTA, "noise_multiplier": 1.0, "epsilon_budget": budget},
            "deadlines": {"phase_seconds": 30.0},  # everyone answers: a generous bound
        }
    )
    hub = InProcessHub()
    _clients(hub, rounds=None)
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"), ledger=ledger)
    results = server.run(wait_for_clients=120)
    ledger.close()
    complete = [r for r in results if r.status == "complete"]
    # 8 clients x 3 rounds = 24 places, 2 a round: 11 or 12 rounds, never fewer than 10
    assert len(complete) >= 10, [(r.status, r.reason) for r in results]
    rounds_of = {name: sum(name in r.participants for r in complete) for name in NAMES}
    assert max(rounds_of.values()) <= 3
    assert all(r.epsilon is not None and r.epsilon <= budget for r in complete)
    assert complete[-1].epsilon == pytest.approx(epsilon(1.0, 1.0, 3, DELTA), rel=1e-9)
    verified = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert verified.ok, verified.first_failure
    assert verified.epsilons[-1][1] == pytest.approx(complete[-1].epsilon, rel=1e-9)


def test_a_restart_that_renames_a_charged_client_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review of 2026-12-03: the per-client charge is keyed by the client's name, so a
    branch renamed in the config starts afresh under its new name; its old name's
    charges stay in the claim, and the server says what happened on restart."""
    import logging

    state = tmp_path / "renamed.sqlite"
    _run_rounds(_config(1, {"noise_multiplier": 1.0}), state, 1)
    renamed = FederationConfig.from_dict(
        {
            "federation": {"name": "budget", "clients": [*NAMES[:-1], "branch-new"],
                           "dimension": 8, "rounds": 2},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": {"clip": 1.0, "delta": DELTA, "noise_multiplier": 1.0},
        }
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="secagg.server"):
        server = FederationServer(renamed, InProcessHub(), ServerStore(state))
    (warning,) = [
        r.getMessage() for r in caplog.records if "not in federation.clients" in r.getMessage()
    ]
    assert warning.startswith("1 clients charged in earlier rounds") and NAMES[-1] in warning
    assert server.mechanism.accountant.epsilon() == pytest.approx(epsilon(1.0, 1.0, 1, DELTA))  # type: ignore[attr-defined]
