"""A CKKS round whose decryption request never reached the key holder is not charged.

Finding (second review of merge 8dcdad5, 2026-12-07): with central DP whose noise the
key holder adds, the server notes the round's charge before the decryption request
leaves (a server that dies after the reply must still be charged). When the transport
then refused that request (:class:`~secagg.transport.base.TransportError`: above its
size limit, an outbox overflow, a session that ended: "the transport could not carry
a message"), the round aborted at once, as it should, but kept the note: it was ledgered
``sum_revealed`` and charged to every branch at the planned epsilon, although the key
holder never decrypted anything and nothing was released. Now a round whose every
request that reveals the sum was refused so (and whose key holder sent nothing since)
aborts uncharged. A send that failed with an OS error of its own (a timeout, a reset)
may have written the request: it stays charged, the safe side.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from _gaussian import exact_gaussian_epsilon
from _keyholder_federation import central_dp_ckks_config, wrapped_holder_federation
from _threads import BOUND

from secagg.ledger.chain import read_chain
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.store import ServerStore
from secagg.transport.framing import MessageTooLarge
from secagg.transport.inprocess import InProcessHub

pytestmark = pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")

NAMES, HOLDER, D = ["b1", "b2", "b3"], "compliance", 4
NOISE_MULTIPLIER, DELTA = 1.0, 1e-5
#: the key holder's requests of a round: 1 the key request, 2 the decryption request
DECRYPTION_REQUEST = 2


class _DecryptionRequestFails(InProcessHub):
    """The first decryption request to :data:`HOLDER` raises a copy of ``error`` (never
    queued)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error, self.requests, self.raised = error, 0, False

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        if name == HOLDER:
            self.requests += 1
            if self.requests == DECRYPTION_REQUEST and not self.raised:
                self.raised = True
                raise type(self.error)(*self.error.args)
        super().send_to_session(name, session, parts)


@pytest.mark.parametrize(
    ("error", "charged"),
    [(MessageTooLarge("5000000 bytes exceed the limit"), False), (TimeoutError("timed out"), True)],
    ids=["refused", "timed-out"],
)
def test_a_decryption_request_the_transport_refused_is_not_charged(
    tmp_path: Path, error: Exception, charged: bool
) -> None:
    """Round 1's decryption request fails; round 2 completes. Refused by the transport
    (nothing carried): before, round 1 was ledgered ``sum_revealed`` with epsilon 4.38
    and round 2's claim composed two releases (6.57); now round 1 is uncharged (no
    ``revealed`` in the state either) and round 2's claim is one release's. Timed out
    (the request may have been written): charged, before and now."""
    config = central_dp_ckks_config(
        tmp_path,
        name="he",
        names=NAMES,
        holder=HOLDER,
        dimension=D,
        clip=1.0,
        noise_multiplier=NOISE_MULTIPLIER,
        delta=DELTA,
    )
    hub = _DecryptionRequestFails(error)
    _, parties = wrapped_holder_federation(
        config,
        hub,
        tmp_path / "keyholder.key",
        NAMES,
        HOLDER,
        D,
        lambda session: session,
        lambda party: party.run(idle_timeout=BOUND),
    )
    parties.start()
    state = open_server_state(config, init=True)
    try:
        results = build_server(config, hub, state.store, ledger=state.ledger).run(
            wait_for_clients=BOUND
        )
    finally:
        state.close()
    parties.end_announced()
    assert hub.raised
    assert [(r.number, r.status) for r in results] == [(1, "aborted"), (2, "complete")]
    assert "could not send to the key holder compliance in phase decrypt" in str(results[0].reason)
    store = ServerStore(config.server.state, create=False)
    try:
        stored_1 = store.rounds()[0]["report"]
    finally:
        store.close()
    rows = {
        row.entry["round"]: row.entry for row in read_chain(tmp_path / "state.sqlite.ledger").rows
    }
    releases = 2 if charged else 1
    exact = exact_gaussian_epsilon(releases / NOISE_MULTIPLIER**2, DELTA)
    assert exact * (1 - 1e-9) <= rows[2]["privacy"]["epsilon"] <= exact * 1.01
    assert bool(rows[1]["dp"].get("sum_revealed")) is charged, rows[1]["dp"]
    assert ("revealed" in stored_1) is charged, stored_1
    assert (results[0].epsilon is not None) is charged


class _DecryptionRequestLost(InProcessHub):
    """The first decryption request to :data:`HOLDER` is taken by the transport (the
    send returns) and then lost on the way: the key holder never reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests, self.lost = 0, False

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        if name == HOLDER:
            self.requests += 1
            if self.requests == DECRYPTION_REQUEST and not self.lost:
                self.lost = True
                return
        super().send_to_session(name, session, parts)


def test_a_decryption_request_the_transport_took_stays_charged_when_no_reply_comes(
    tmp_path: Path,
) -> None:
    """The decryption request leaves (the transport took it) but no reply comes before
    the phase's deadline: the server cannot know that the key holder did not decrypt,
    so the aborted round stays charged (``sum_revealed``), the safe side the new rule
    must not give up."""
    settings = {
        "federation": {"name": "he", "clients": NAMES, "dimension": D, "rounds": 1},
        "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": HOLDER},
        # the lost request's phase ends on its deadline: short, as nothing else waits on it
        "deadlines": {"phase_seconds": 1.5, "training_seconds": BOUND},
        "server": {"state": str(tmp_path / "state.sqlite")},
        "dp": {
            "clip": 1.0,
            "noise_multiplier": NOISE_MULTIPLIER,
            "delta": DELTA,
            "mechanism": "central",
        },
    }
    config = FederationConfig.from_dict(settings)
    hub = _DecryptionRequestLost()
    _, parties = wrapped_holder_federation(
        config,
        hub,
        tmp_path / "keyholder.key",
        NAMES,
        HOLDER,
        D,
        lambda session: session,
        lambda party: party.run(idle_timeout=BOUND),
    )
    parties.start()
    state = open_server_state(config, init=True)
    try:
        results = build_server(config, hub, state.store, ledger=state.ledger).run(
            wait_for_clients=BOUND, max_attempts=1
        )
    finally:
        state.close()
    parties.end_announced()
    assert hub.lost
    assert [r.status for r in results] == ["aborted"]
    (row,) = [row.entry for row in read_chain(tmp_path / "state.sqlite.ledger").rows]
    assert row["dp"].get("sum_revealed") is True, row["dp"]
    exact = exact_gaussian_epsilon(1 / NOISE_MULTIPLIER**2, DELTA)
    assert exact * (1 - 1e-9) <= row["privacy"]["epsilon"] <= exact * 1.01
