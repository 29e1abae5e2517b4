"""A CKKS round whose noised sum the server saw, then died before storing it, is charged.

Finding (worktree 165): with central DP where the CKKS key holder adds the noise (the
server never sees the un-noised sum), the decrypted sum the server receives is the
release, as the unmasked sum is under distributed DP. The central mechanism's
``charge_at_reveal`` was None, so a server that died after the key holder's reply arrived
but before the round was stored restarted with the round "aborted: server restarted
mid-round", ran it again, and the federation's epsilon missed one release. The oracle of
tests/_crash_points.py agreed with the server (it charges an aborted round only when it
saw a reveal noted), so the enumeration in test_crash_points_keyholder.py passed.

Here the server is killed at its state's commit of round 1 (before: never committed), after
the key holder answered round 1; the restarted server must record round 1 as revealed and
charge it, and the ledger's claim must count three releases for every branch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from _crash_points import (
    CKKS_CENTRAL,
    DELTA,
    KEY_FILE,
    Observed,
    Writes,
    check_invariants,
    federation_config,
    run_crashed,
)
from _gaussian import exact_gaussian_epsilon

from secagg.ledger import verify_ledger
from secagg.ledger.chain import load_public_key
from secagg.runtime.launch import make_key_holder_key
from secagg.runtime.store import ServerStore

pytestmark = pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")


def _key_holder(tmp_path: Path, made: Path, pin: bytes) -> bytes:
    shutil.copy2(made / KEY_FILE, tmp_path / KEY_FILE)  # keyholder-init, done once
    return pin


def _server_writes(tmp_path: Path, pin: bytes) -> Writes:
    """The server's durable writes of a clean two-round CKKS federation."""
    writes, seen = Writes(), Observed()
    run_crashed(tmp_path, CKKS_CENTRAL, writes, seen, pin)
    return writes


def test_a_server_killed_after_the_key_holders_reply_is_charged_for_that_round(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    made = tmp_path_factory.mktemp("key")
    config = federation_config(made, CKKS_CENTRAL)
    pin = make_key_holder_key(config, made / KEY_FILE)
    clean = tmp_path_factory.mktemp("clean")
    points = _server_writes(clean, _key_holder(clean, made, pin)).seen["server"]
    (store_round_1,) = [k for k, p in enumerate(points) if p.by == "complete_round 1"]

    folder = tmp_path_factory.mktemp("crash")
    writes, seen = Writes(crashes={("server", store_round_1): "before"}), Observed()
    run_crashed(folder, CKKS_CENTRAL, writes, seen, _key_holder(folder, made, pin))
    assert writes.fired == [("server", store_round_1)]
    assert 1 in seen.decrypted  # the key holder answered round 1: the server saw its sum

    store = ServerStore(folder / "state.sqlite", create=False)
    try:
        rounds = {row["number"]: row for row in store.rounds()}
    finally:
        store.close()
    assert rounds[1]["status"] == "aborted"
    assert rounds[1]["report"].get("revealed"), (
        f"round 1's noised sum reached the server, yet it is stored {rounds[1]['report']}"
    )
    audit = verify_ledger(
        folder / "state.sqlite.ledger",
        public_key=load_public_key(folder / "state.sqlite.ledger-key.pub"),
    )
    assert audit.ok, audit.first_failure
    rows = {row.entry["round"]: row.entry for row in audit.chain.rows}
    assert rows[1]["dp"].get("sum_revealed") is True, rows[1]["dp"]
    # every branch took part in all three releases (rounds 1, 2 and 3; rate 1.0)
    released = [n for n, row in rounds.items() if row["status"] == "complete" or n == 1]
    assert len(released) == 3, rounds
    noise_multiplier = config.dp.noise_multiplier  # type: ignore[union-attr]
    exact = exact_gaussian_epsilon(len(released) / noise_multiplier**2, DELTA)
    claim = rows[max(rows)]["privacy"]["epsilon"]
    assert exact * (1 - 1e-9) <= claim <= exact * 1.01, (claim, exact)
    # and the harness's own invariants (models, one row per round, verify, claims)
    check_invariants(folder, CKKS_CENTRAL, writes, seen, "crash before storing round 1")
