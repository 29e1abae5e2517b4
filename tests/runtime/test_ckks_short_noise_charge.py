"""A CKKS key holder that adds less noise than planned: the round is charged what ran.

Finding (review of 2026-12-06, runtime/server.py ``_hold_at_budget``): with central DP
whose noise the CKKS key holder adds, the server notes the round's charge at the
*planned* noise before the decryption request leaves (the key holder's noised sum is
the release). A key holder that then added less (here: the floor only, as if the
server had asked for none) was refused by the server's check, the round aborted, and
the abort kept the charge noted before the check: a ledger row ``sum_revealed`` with the
epsilon of the planned noise, for a sum the server saw under far less.

Now the server re-notes the charge at the noise the key holder reports as soon as the
reply is read (before the round is stored), so the aborted round's row, the stored
round and the restarted accountant all carry the epsilon of the noise that ran, and the
ledger's replay (``audit verify``) agrees with it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tenseal")

from _keyholder_federation import central_dp_ckks_config, wrapped_holder_federation

from secagg.aggregation.base import HelperSession
from secagg.aggregation.ckks import KeyHolderSession
from secagg.aggregation.keyholder_policy import KeyHolderRefusal
from secagg.dp.accountants import PerClientAccountant
from secagg.ledger import verify_ledger
from secagg.ledger.chain import load_public_key
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
#: generous bounds: every wait ends on an event (the round's end), never on the clock
IDLE = 60.0
JOIN = 60.0
#: the offset of the requested noise std in a decryption request: the helper header
#: (magic, version, kind: 4 + 1 + 1 bytes), then the dimension (u32), then the std (f64)
REQUESTED_STD_AT = 6 + 4


def _config(tmp_path: Path) -> FederationConfig:
    return central_dp_ckks_config(
        tmp_path,
        name="short",
        names=NAMES,
        holder=KEY_HOLDER,
        dimension=6,
        clip=CLIP,
        noise_multiplier=NOISE_MULTIPLIER,
        delta=DELTA,
    )


class _UnderNoising(HelperSession):
    """A real key holder that decrypts as if the server had asked for no noise: it adds
    its floor only (about 10⁻⁶ here, against the planned 1.0) and says so in its reply."""

    def __init__(self, honest: KeyHolderSession) -> None:
        self.honest = honest
        self.reported: list[float] = []

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        data = bytearray(payload)
        if data[5] == 3:  # a decryption request: its requested std zeroed
            data[REQUESTED_STD_AT : REQUESTED_STD_AT + 8] = bytes(8)
            reply = self.honest.handle(bytes(data), round_number=round_number)
            self.reported.append(float(np.frombuffer(reply[6:14], "<f8")[0]))
            return reply
        return self.honest.handle(payload, round_number=round_number)

    def refusal(self, error: BaseException) -> bytes | None:
        return self.honest.refusal(error)


class _RefusingDecryption(_UnderNoising):
    """A real key holder that refuses the decryption request before decrypting anything
    (as its record, its cap or its checks of the request would): a refusal reply."""

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        if payload[5] == 3:
            raise KeyHolderRefusal("not today: nothing decrypted")
        return self.honest.handle(payload, round_number=round_number)


def _run(
    tmp_path: Path, kind: type[_UnderNoising] = _UnderNoising
) -> tuple[FederationConfig, _UnderNoising]:
    config = _config(tmp_path)
    hub = InProcessHub()
    stub, parties = wrapped_holder_federation(
        config,
        hub,
        tmp_path / "keyholder.key",
        NAMES,
        KEY_HOLDER,
        6,
        kind,
        lambda party: party.run(idle_timeout=IDLE),
    )
    parties.start()
    state = open_server_state(config)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        server.run(wait_for_clients=IDLE, max_attempts=1)
    finally:
        state.close()
    parties.end_announced(JOIN)  # each takes the end the server announced
    return config, stub


def test_an_under_noised_reply_charges_the_noise_that_ran_not_the_planned_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="secagg")
    _, stub = _run(tmp_path)
    (reported,) = stub.reported  # the key holder answered once, with its floor
    assert 0 < reported < NOISE_MULTIPLIER * CLIP / 1000
    store = ServerStore(tmp_path / "state.sqlite", create=False)
    try:
        (row,) = store.rounds()
    finally:
        store.close()
    assert row["status"] == "aborted"
    assert "below the 1 this round planned" in row["report"]["reason"]
    charged = row["report"]["revealed"]
    # the epsilon of one release at the noise the key holder added, to every branch
    ran = PerClientAccountant(DELTA, "pld")
    ran.step(reported / CLIP)
    planned = PerClientAccountant(DELTA, "pld")
    planned.step(NOISE_MULTIPLIER)
    assert charged["charged"]["noise_multiplier"] == pytest.approx(reported / CLIP)
    assert charged["epsilon"] >= ran.epsilon() * (1 - 1e-9)
    assert charged["epsilon"] > 100 * planned.epsilon()
    # the operator's line for the round says what it was charged, not "epsilon -" (the
    # line took the epsilon of complete rounds only)
    (line,) = [r.getMessage() for r in caplog.records if "round 1 aborted" in r.getMessage()]
    logged = re.search(r"epsilon ([0-9.e+]+)", line)
    assert logged is not None, line
    assert float(logged.group(1)) == pytest.approx(charged["epsilon"], rel=1e-3)
    audit = verify_ledger(
        tmp_path / "state.sqlite.ledger",
        public_key=load_public_key(tmp_path / "state.sqlite.ledger-key.pub"),
    )
    (ledger_row,) = [r.entry for r in audit.chain.rows]
    assert ledger_row["status"] == "aborted" and ledger_row["dp"]["sum_revealed"] is True
    assert ledger_row["dp"]["noise_std"] == pytest.approx(reported)
    assert ledger_row["privacy"]["epsilon"] == pytest.approx(charged["epsilon"])
    # the replay charges what the row says ran, and finds the claim honest
    assert audit.ok, audit.first_failure
    # and a restarted server's accountant is charged what ran, as the row says
    config = _config(tmp_path)
    state = open_server_state(config)
    try:
        restarted = build_server(config, InProcessHub(), state.store, ledger=state.ledger)
        assert restarted.mechanism.accountant.epsilon() == pytest.approx(charged["epsilon"])  # type: ignore[attr-defined]
    finally:
        state.close()


def test_a_decryption_the_key_holder_refused_is_not_charged(tmp_path: Path) -> None:
    """The charge noted before the request left was kept when the key holder refused it:
    a round in which nothing reached the server was ledgered ``sum_revealed`` at the
    planned epsilon. A refusal is the key holder's whole reply to the round's one
    decryption request (it decrypts a round once, and a refused round is spent or
    refused again), so nothing of the sum was released: the round is aborted uncharged."""
    _run(tmp_path, _RefusingDecryption)
    store = ServerStore(tmp_path / "state.sqlite", create=False)
    try:
        (row,) = store.rounds()
    finally:
        store.close()
    assert row["status"] == "aborted" and "nothing decrypted" in row["report"]["reason"]
    assert "revealed" not in row["report"], row["report"]
    audit = verify_ledger(
        tmp_path / "state.sqlite.ledger",
        public_key=load_public_key(tmp_path / "state.sqlite.ledger-key.pub"),
    )
    assert audit.ok, audit.first_failure
    (ledger_row,) = [r.entry for r in audit.chain.rows]
    assert not (ledger_row.get("dp") or {}).get("sum_revealed"), ledger_row
    assert ledger_row["privacy"]["epsilon"] is None, ledger_row["privacy"]
