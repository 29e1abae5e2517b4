"""A malicious branch's out-of-range CKKS upload: an ordinary release, charged as planned.

Finding (review of 2026-12-06, tests/aggregation/test_ckks_implausible_refusal_bit.py):
the key holder refused a sum whose exact decryption was beyond what the round's
contributions can add up to, and the server aborted the round uncharged with "implausible
sum" in its ledger row: one un-noised bit of the honest branches' sum, which a malicious
branch's upload turned into a threshold on their values.

Now the key holder clamps the exact sum into the range before its noise and releases it
as any other: the round completes, its ledger row is charged at the planned noise (the
clamp is 1-Lipschitz in L2, so the planned sensitivity holds) and names no refusal, and
only the key holder's own log says that coordinates were clamped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tenseal")

from _keyholder_federation import central_dp_ckks_config, wrapped_holder_federation

from secagg.aggregation.ckks import CKKSClient, frame_chunks
from secagg.dp.accountants import PerClientAccountant
from secagg.he.vectors import EncryptedSum, encrypt_vector
from secagg.ledger import verify_ledger
from secagg.ledger.chain import load_public_key
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

pytestmark = [
    pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning"),
    # a party's thread that outlives the test (tests/_keyholder_federation.py) fails it
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

NAMES = ["b1", "b2", "b3"]
KEY_HOLDER = "compliance"
DIMENSION = 6
CLIP = 1.0
NOISE_MULTIPLIER = 1.0
DELTA = 1e-3
#: generous bounds: every wait ends on an event (the round's end), never on the clock
IDLE = 60.0
JOIN = 60.0
#: the malicious branch's upload: three value bounds a coordinate as one contribution,
#: so the exact sum (3 plus the honest 0.2 and 0.3) is beyond the 3 three values reach
INFLATION = 3


SetInput = Callable[[CKKSClient, np.ndarray], list[bytes]]


def _malicious_party_zero(honest_set_input: SetInput) -> SetInput:
    """``CKKSClient.set_input`` for every party but 0, whose upload is encryptions of
    the value bound summed and relabelled as one contribution (a branch holds the public
    key, so it can: it need not run this code's bound check)."""

    def set_input(self: CKKSClient, update: np.ndarray) -> list[bytes]:
        if self.party != 0:
            return honest_set_input(self, update)
        inflated = EncryptedSum(self._context, DIMENSION)
        for _ in range(INFLATION):
            inflated.add(encrypt_vector(self._context, np.full(DIMENSION, 1.0)))
        relabelled = [
            c[:5] + b"\x01" + c[6:22] + (1).to_bytes(4, "big") + c[26:]
            for c in inflated.to_chunks()
        ]
        return [frame_chunks(relabelled)]

    return set_input


def test_an_out_of_range_upload_is_released_clamped_and_charged_as_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(CKKSClient, "set_input", _malicious_party_zero(CKKSClient.set_input))
    caplog.set_level(logging.WARNING, logger="secagg.keyholder")
    config = central_dp_ckks_config(
        tmp_path,
        name="clamped",
        names=NAMES,
        holder=KEY_HOLDER,
        dimension=DIMENSION,
        clip=CLIP,
        noise_multiplier=NOISE_MULTIPLIER,
        delta=DELTA,
    )
    hub = InProcessHub()
    _, parties = wrapped_holder_federation(
        config,
        hub,
        tmp_path / "keyholder.key",
        NAMES,
        KEY_HOLDER,
        DIMENSION,
        lambda session: session,
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

    store = ServerStore(tmp_path / "state.sqlite", create=False)
    try:
        (row,) = store.rounds()
    finally:
        store.close()
    assert row["status"] == "complete", row["report"]
    assert "implausible" not in str(row["report"])
    audit = verify_ledger(
        tmp_path / "state.sqlite.ledger",
        public_key=load_public_key(tmp_path / "state.sqlite.ledger-key.pub"),
    )
    assert audit.ok, audit.first_failure
    (ledger_row,) = [r.entry for r in audit.chain.rows]
    assert ledger_row["status"] == "complete" and "implausible" not in str(ledger_row)
    assert ledger_row["dp"]["noise_std"] == pytest.approx(NOISE_MULTIPLIER * CLIP)
    planned = PerClientAccountant(DELTA, "pld")
    planned.step(NOISE_MULTIPLIER)
    assert ledger_row["privacy"]["epsilon"] == pytest.approx(planned.epsilon(), rel=1e-6)
    # the key holder's own log, never the server's, says what it clamped
    clamped = [r.getMessage() for r in caplog.records if "released clamped" in r.getMessage()]
    assert len(clamped) == 1 and f"{DIMENSION} of {DIMENSION} coordinates" in clamped[0]
