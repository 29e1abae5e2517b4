"""A branch that reveals a wrong share at unmasking: the operator sees the disputed pair.

The protocol outvotes the wrong share (the sum stays exact) and records the pair
(holder, owner) without a verdict: the holder lied, or the owner dealt it a wrong
share. Before, the runtime read only accusations, so the pair reached neither the log
nor the store, although docs/deployment.md told operators it was recorded.
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path

import numpy as np
import pytest

from secagg.crypto import shamir
from secagg.protocol import decode, encode
from secagg.protocol.messages import RevealedShare, UnmaskingShares
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, decode_message, encode_message
from secagg.transport.inprocess import InProcessHub

D = 8
NAMES = [f"branch-{i:02d}" for i in range(8)]
LIAR = NAMES[1]


def _shifted(share: bytes) -> bytes:
    """A well-formed share moved by a random nonzero amount in each limb."""
    parsed = shamir.Share.from_bytes(1, share)
    moved = tuple(
        (v + 1 + secrets.randbelow(shamir.PRIME - 1)) % shamir.PRIME for v in parsed.values
    )
    return shamir.Share(1, moved).to_bytes()


class LyingAtUnmasking:
    """A client endpoint that shifts the first self-mask share its branch reveals."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.victims: list[int] = []

    def send(self, payload: bytes) -> None:
        message = decode_message(payload)
        if isinstance(message, Relay):
            inner = decode(message.payload)
            if isinstance(inner, UnmaskingShares) and inner.self_mask_shares:
                first, *rest = inner.self_mask_shares
                self.victims.append(first.owner)
                shares = (RevealedShare(first.owner, _shifted(first.share)), *rest)
                lie = UnmaskingShares(inner.round_id, inner.sender, shares, inner.mask_key_shares)
                payload = encode_message(Relay(message.round, encode(lie), message.privacy))
        self._inner.send(payload)  # type: ignore[attr-defined]

    def receive(self, timeout: float | None) -> bytes | None:
        return self._inner.receive(timeout)  # type: ignore[attr-defined]


def test_a_wrong_revealed_share_is_logged_and_stored_as_a_disputed_pair(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "disputes", "clients": NAMES, "dimension": D, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            # complete graph sized for 30 % dropouts: t = 6 of 8, so the 7 honest shares of
            # the victim's seed outvote the wrong one and the pair can be named
            "backend": {"name": "secagg", "value_bound": 1.0, "dropout_fraction": 0.3},
            "deadlines": {"phase_seconds": 30.0},
            "server": {"state": str(tmp_path / "s.sqlite")},
        }
    )
    hub = InProcessHub()
    liar = LyingAtUnmasking(hub.connect(LIAR))
    for name in NAMES:
        transport = liar if name == LIAR else hub.connect(name)
        client = FederationClient(name, lambda m: np.full_like(m, 0.25), transport)  # type: ignore[arg-type]
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 60, "rounds": 1}, daemon=True
        ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    with caplog.at_level(logging.WARNING, logger="secagg"):
        (result,) = server.run(wait_for_clients=120)
    assert result.status == "complete", result.reason
    assert np.allclose(server.model, 0.25, atol=1e-6)  # outvoted: the sum is exact
    assert len(liar.victims) == 1
    victim = result.participants[liar.victims[0]]
    stored = ServerStore(tmp_path / "s.sqlite").rounds()[0]["report"]
    assert stored["disputed"] == {LIAR: [victim]}
    assert server.excluded() == set()  # a pair is no verdict: nobody is excluded
    lines = [r.getMessage() for r in caplog.records if "disputed shares" in r.getMessage()]
    assert lines and LIAR in lines[0] and victim in lines[0]
