"""A server killed as it reads an under-noised key-holder reply restarts charged for it.

Finding (review of 2026-12-06, runtime/server.py ``_charge_after_reply``): with central DP
whose noise the CKKS key holder adds, the server notes the round's charge at the planned
noise before the decryption request leaves, and re-noted it at the noise the key holder's
reply reports only after the session had read the reply. A server process that died in
between (here: the moment its session starts reading the reply) restarted with the
planned charge on disk: the round was ledgered at the plan's epsilon for a sum that had
reached the server's code under far less noise (a report of 10⁻³ against the planned
1.0), or under none it could vouch for (a report of NaN, which the session then refused).

Now the runtime writes the charge at the reply's reported noise (``noise_of_reply``: 0,
epsilon infinite, for NaN) before the session reads the reply, so the restart charges
what ran. The in-process run plays the crash as tests/_crash_points.py does: a
BaseException no handler of the runtime takes, then a fresh server over the same state.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tenseal")

from _keyholder_federation import central_dp_ckks_config, wrapped_holder_federation

from secagg.aggregation.base import HelperSession
from secagg.aggregation.ckks import CKKSServer, KeyHolderSession
from secagg.dp.accountants import PerClientAccountant
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import (
    build_server,
    open_server_state,
)
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

pytestmark = [
    pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning"),
    # a party's thread that outlives the test (tests/_keyholder_federation.py) fails it
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

NAMES = ["b1", "b2", "b3"]
KEY_HOLDER = "compliance"
CLIP = 1.0
NOISE_MULTIPLIER = 1.0
DELTA = 1e-3
#: generous bounds: every wait ends on an event (the crash, the threads' end)
IDLE = 60.0
JOIN = 60.0
#: the decrypted reply's noise std: after the helper header (magic, version, kind)
NOISE_AT = 6
_DECRYPTION_REQUEST = 3


class _Killed(BaseException):
    """The server's process dies here (no handler of the runtime's takes it)."""


class _Reporting(HelperSession):
    """A real key holder whose decrypted reply reports ``report`` as its noise std."""

    def __init__(self, honest: KeyHolderSession, report: float) -> None:
        self.honest, self.report = honest, report
        self.answered = 0

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        reply = self.honest.handle(payload, round_number=round_number)
        if payload[5] != _DECRYPTION_REQUEST:
            return reply
        self.answered += 1
        return reply[:NOISE_AT] + struct.pack("<d", self.report) + reply[NOISE_AT + 8 :]

    def refusal(self, error: BaseException) -> bytes | None:
        return self.honest.refusal(error)


def _config(tmp_path: Path) -> FederationConfig:
    return central_dp_ckks_config(
        tmp_path,
        name="crash",
        names=NAMES,
        holder=KEY_HOLDER,
        dimension=4,
        clip=CLIP,
        noise_multiplier=NOISE_MULTIPLIER,
        delta=DELTA,
    )


def _killed_reading_the_reply(
    tmp_path: Path, report: float, monkeypatch: pytest.MonkeyPatch
) -> tuple[FederationConfig, _Reporting]:
    """Run round 1 until the server's session starts reading the key holder's reply, and
    kill the server there."""
    config = _config(tmp_path)
    hub = InProcessHub()
    stub, parties = wrapped_holder_federation(
        config,
        hub,
        tmp_path / "keyholder.key",
        NAMES,
        KEY_HOLDER,
        4,
        lambda honest: _Reporting(honest, report),
        lambda party: party.run(idle_timeout=IDLE),
    )

    def killed(self: CKKSServer, data: bytes) -> Any:
        raise _Killed("the server dies as its session reads the key holder's reply")

    monkeypatch.setattr(CKKSServer, "_on_decrypted", killed)
    parties.start()
    state = open_server_state(config)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        with pytest.raises(_Killed):
            server.run(wait_for_clients=IDLE, max_attempts=1)
    finally:
        state.close()  # a dead process's connections close; no transaction was open
    # its closed streams end every party's session: NotConnected stops each, as expected
    parties.end_with_the_server_dead(JOIN)
    monkeypatch.undo()
    return config, stub


def _epsilon_at(noise_multiplier: float) -> float:
    accountant = PerClientAccountant(DELTA, "pld")
    accountant.step(noise_multiplier)
    return accountant.epsilon()


@pytest.mark.parametrize(
    ("report", "least"),
    [
        (1e-3, _epsilon_at(1e-3 / CLIP)),  # under-noised: the epsilon of what it reports
        (math.nan, math.inf),  # vouches for no noise: none
    ],
    ids=["reports 1e-3", "reports NaN"],
)
def test_a_server_killed_reading_the_reply_restarts_charged_at_its_noise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report: float, least: float
) -> None:
    config, stub = _killed_reading_the_reply(tmp_path, report, monkeypatch)
    assert stub.answered == 1  # the key holder decrypted round 1: its reply left
    state = open_server_state(config)  # the restarted server, over the same state
    try:
        restarted = build_server(config, InProcessHub(), state.store, ledger=state.ledger)
        charged = restarted.mechanism.accountant.epsilon()  # type: ignore[attr-defined]
    finally:
        state.close()
    planned = _epsilon_at(NOISE_MULTIPLIER)
    # before: the planned epsilon (about 4.4 for 1.0), noted before the request left
    assert charged >= least * (1 - 1e-9), (charged, least, planned)
    store = ServerStore(tmp_path / "state.sqlite", create=False)
    try:
        (row,) = store.rounds()
    finally:
        store.close()
    revealed = row["report"]["revealed"]
    assert revealed["epsilon"] >= least * (1 - 1e-9), revealed
    assert revealed["charged"]["noise_multiplier"] < NOISE_MULTIPLIER
