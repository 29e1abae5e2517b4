"""One malicious branch can no longer veto rounds anonymously (security review M3).

The branch seals garbage for every neighbour. Before, each neighbour refused the
whole delivery and dropped out, the round aborted, nobody could tell why, and five
aborted rounds stopped the federation. Now its neighbours name it and go on, the
round completes, and a branch named by ``server.exclude_after_accusers`` distinct
others is left out of later rounds (also after a restart).
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np

from secagg.protocol import decode, encode
from secagg.protocol.messages import SealedShare, ShareKeys
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, decode_message, encode_message
from secagg.transport.inprocess import InProcessHub

D = 8
NAMES = [f"branch-{i:02d}" for i in range(6)]
MALLORY = NAMES[2]


class PoisonedShares:
    """A client endpoint that flips a byte of every share its branch seals."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def send(self, payload: bytes) -> None:
        message = decode_message(payload)
        if isinstance(message, Relay):
            inner = decode(message.payload)
            if isinstance(inner, ShareKeys):
                bad = tuple(
                    SealedShare(s.peer, s.ciphertext[:-1] + bytes([s.ciphertext[-1] ^ 1]))
                    for s in inner.shares
                )
                poisoned = encode(dataclasses.replace(inner, shares=bad))
                payload = encode_message(Relay(message.round, poisoned, message.privacy))
        self._inner.send(payload)  # type: ignore[attr-defined]

    def receive(self, timeout: float | None) -> bytes | None:
        return self._inner.receive(timeout)  # type: ignore[attr-defined]


def _config(state: Path, rounds: int) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "m3", "clients": NAMES, "dimension": D, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg", "value_bound": 1.0},  # complete graph: all neighbours
            "deadlines": {"phase_seconds": 10.0},
            "server": {"state": str(state)},
        }
    )


def _branches(hub: InProcessHub, rounds: int | None) -> list[threading.Thread]:
    threads = []
    for name in NAMES:
        endpoint = hub.connect(name)
        transport = PoisonedShares(endpoint) if name == MALLORY else endpoint
        client = FederationClient(name, lambda m: np.full_like(m, 0.25), transport)  # type: ignore[arg-type]
        thread = threading.Thread(
            target=client.run, kwargs={"idle_timeout": 15, "rounds": rounds}, daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


def test_m3_poisoned_shares_name_the_sender_and_exclude_it(tmp_path: Path) -> None:
    hub = InProcessHub()
    _branches(hub, rounds=None)
    state = tmp_path / "m3.sqlite"
    server = FederationServer(_config(state, 2), hub, ServerStore(state))
    results = server.run(wait_for_clients=120)
    first = results[0]
    # Mallory's neighbours named it instead of dropping out; whether its own masks
    # can still be removed in that round or not, it is excluded from then on
    assert server.excluded() == {MALLORY}
    stored = ServerStore(state).rounds()[0]["report"]
    assert sorted(stored["accused"][MALLORY]) == sorted(n for n in NAMES if n != MALLORY)
    if first.status == "aborted":
        assert "did not open" in (first.reason or "")
    later = results[1:]
    assert [r.status for r in later][-1:] == ["complete"]
    assert all(MALLORY not in r.participants for r in later)
    assert len(results) <= 3  # at most one round lost to the poisoned shares
    assert np.allclose(server.model, 0.25 * 2, atol=1e-6)

    # the exclusion outlives a restart (it is rebuilt from the store)
    restarted = FederationServer(_config(state, 3), InProcessHub(), ServerStore(state))
    assert restarted.excluded() == {MALLORY}
