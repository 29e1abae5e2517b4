"""A slow branch's link, made by the server's side of the in-process hub without clocks,
and the SecAgg+ round it stalls in, for the tests of how the server logs and refuses a
dropped party's payloads (late: INFO; out of phase or another round: WARNING).

The hub holds the slow branch's first payload of round 1 and hides the branch from
``connected`` (a link that stalled), so the server closes that phase without it at once;
a subclass says, in :meth:`StallingLink.on_server_send`, what arrives from the branch
when the link is back."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from _threads import BOUND, Party

from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, decode_message
from secagg.transport.inprocess import InProcessHub


class StallingLink(InProcessHub):
    """Holds ``slow``'s first payload of round 1 in :attr:`held` and hides ``slow`` until
    :attr:`released`; :meth:`on_server_send` sees every message the server sends."""

    def __init__(self, slow: str) -> None:
        super().__init__()
        self.slow = slow
        self.held: tuple[str, bytes] | None = None
        self.released = False

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = super().receive(timeout)
        if item is not None and item[0] == self.slow and self.held is None:
            message = decode_message(item[1])
            if isinstance(message, Relay) and message.round == 1:
                self.held = item
                self.wake_server()  # the server looks at who is connected at once
                return None
        return item

    def connected(self) -> set[str]:
        stalled = self.held is not None and not self.released
        return super().connected() - ({self.slow} if stalled else set())

    def on_server_send(self, name: str, payload: bytes) -> None:
        """Called after each message the server sends ``name``; releases nothing here."""

    def send(self, name: str, payload: bytes) -> None:
        super().send(name, payload)
        self.on_server_send(name, payload)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        super().send_to_session(name, session, parts)
        self.on_server_send(name, b"".join(parts))


def run_secagg_plus(
    tmp_path: Path,
    hub: InProcessHub,
    caplog: pytest.LogCaptureFixture,
    *,
    federation: str,
    names: list[str],
    dimension: int,
    rounds: int,
) -> tuple[list[RoundResult], FederationServer, list[Party]]:
    """Run ``rounds`` SecAgg+ rounds of ``names`` (every one sampled, each sending 0.01s)
    over ``hub``, one attempt a round, the server's INFO lines captured by ``caplog``:
    the results, the server and the branches' parties."""
    config = FederationConfig.from_dict(
        {
            "federation": {
                "name": federation,
                "clients": names,
                "dimension": dimension,
                "rounds": rounds,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.4},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    parties = []
    for name in names:
        client = FederationClient(name, lambda m: np.full_like(m, 0.01), hub.connect(name))
        parties.append(Party(lambda c=client: c.run(idle_timeout=BOUND, rounds=rounds)))
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    with caplog.at_level(logging.INFO, logger="secagg.server"):
        results = server.run(wait_for_clients=BOUND, max_attempts=rounds)
    return list(results), server, parties
