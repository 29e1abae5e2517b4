"""A party the transport refused a message to is a dropout of the phase at once.

Known since the review of 2026-12-06 (secagg/runtime/server.py, ``_send``): when the
transport refused a message to a party (above its size limit, its outbox full, its
session gone), the server logged it and kept the party in the round, waiting for its
answer until the phase's deadline (``phase_seconds``: minutes in a deployment), though
a party cannot answer what it never got. Now a refused send makes the party gone from
the round in flight: the phase closes as soon as everyone else answered, the party a
dropout, and the round completes with the others' sum or aborts by its threshold.

The phase deadlines here are far beyond the bound the tests wait on (``BOUND``): a round
that waited one out would miss it. Each wait is an event with that generous bound.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, RoundStart, decode_message
from secagg.transport.framing import MessageTooLarge
from secagg.transport.inprocess import InProcessHub

D = 8
NAMES = [f"branch-{i}" for i in range(5)]
BOUND = 60.0  # seconds: the upper bound of every wait on another thread
NEVER = 20 * BOUND  # a phase deadline no test waits out


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "refused", "clients": NAMES, "dimension": D, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            # thresholds that tolerate one dropout among these five branches, not three
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.3},
            "deadlines": {
                "phase_seconds": NEVER,
                "training_seconds": NEVER,
                "round_seconds": 2 * NEVER,
            },
        }
    )


class _Refuses:
    """The server's side of the hub, whose transport refuses (as too large) every
    message to ``victims`` that ``refused`` picks."""

    def __init__(
        self, hub: InProcessHub, victims: set[str], refused: Callable[[object], bool]
    ) -> None:
        self._hub = hub
        self._victims = victims
        self._refused = refused
        self.refusals = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hub, name)

    def send(self, name: str, payload: bytes) -> None:
        if name in self._victims and self._refused(decode_message(payload)):
            self.refusals += 1
            raise MessageTooLarge(f"{len(payload)} bytes to {name!r} exceed the limit")
        self._hub.send(name, payload)


def _round(tmp_path: Path, victims: set[str], refused: Callable[[object], bool]) -> RoundResult:
    """One round of NAMES over a transport refusing ``refused`` messages to ``victims``;
    fails unless it ends within BOUND."""
    hub = InProcessHub()
    for i, name in enumerate(NAMES):
        client = FederationClient(
            name, lambda model, i=i: np.full_like(model, 0.01 * (i + 1)), hub.connect(name)
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": NEVER, "rounds": 1}, daemon=True
        ).start()
    transport = _Refuses(hub, victims, refused)
    results: list[RoundResult] = []
    done = threading.Event()

    def run() -> None:  # the store is the thread's own (SQLite's rule)
        try:
            store = ServerStore(tmp_path / "state.sqlite")
            server = FederationServer(_config(), transport, store)
            results.append(server.run_round())
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(BOUND), "the round waited out a phase deadline for a party it could not reach"
    assert transport.refusals >= len(victims)
    (result,) = results
    return result


def _is_relay(message: object) -> bool:
    return isinstance(message, Relay)


def _is_start(message: object) -> bool:
    return isinstance(message, RoundStart)


@pytest.mark.parametrize("refused", [_is_relay, _is_start], ids=["relay", "round start"])
def test_a_refused_send_makes_its_party_a_dropout_and_the_round_completes(
    tmp_path: Path, refused: Callable[[object], bool]
) -> None:
    result = _round(tmp_path, {NAMES[-1]}, refused)
    assert result.status == "complete", result.reason
    assert result.contributed == tuple(NAMES[:-1])


def test_refused_sends_below_the_threshold_abort_the_round_at_once(tmp_path: Path) -> None:
    """Three of five unreachable: too few are left for the threshold. The round aborts
    (no sum), at once instead of after the phase's deadline."""
    result = _round(tmp_path, set(NAMES[2:]), _is_relay)
    assert result.status == "aborted"
    assert result.contributed == ()


def test_a_refused_round_end_after_the_round_changes_nothing(tmp_path: Path) -> None:
    """A send that fails after the round (its end) makes no one gone from the next."""
    from secagg.runtime.wire import RoundEnd

    result = _round(tmp_path, {NAMES[0]}, lambda message: isinstance(message, RoundEnd))
    assert result.status == "complete", result.reason
    assert result.contributed == tuple(NAMES)
