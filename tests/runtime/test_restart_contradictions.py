"""A restarted server whose config or files contradict its state refuses to start.

CLI audit, 2026-12-04: each of these restarts used to run and leave a ledger that
``secagg audit verify`` fails for good (rounds released without noise charged as
noised, a truncated ledger "repaired" by appending), or failed with a message naming
neither the key nor the stored value. Each federation is real (three branches over
the in-process transport, SecAgg+, dimension 10) and restarted the way ``secagg
server`` restarts it: :func:`~secagg.runtime.launch.open_server_state`, then
:func:`~secagg.runtime.launch.build_server`, both before any port is bound.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _delta_federation import run_every_round
from _state import drop_last_ledger_rows

from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError
from secagg.ledger import verify_ledger
from secagg.ledger.chain import Ledger, LedgerError, LedgerKey
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

D = 10
NAMES = ["b1", "b2", "b3"]
#: generous: the branches only wait this long when a round never comes
IDLE = 60.0


def _config(tmp_path: Path, rounds: int, **sections: dict[str, Any]) -> FederationConfig:
    data: dict[str, Any] = {
        "federation": {"name": "restart", "clients": NAMES, "dimension": D, "rounds": rounds},
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": "secagg+", "value_bound": 1.0},
        "deadlines": {"phase_seconds": 60.0},
        "server": {"state": str(tmp_path / "state.sqlite")},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return FederationConfig.from_dict(data)


def _restart(config: FederationConfig) -> None:
    """What ``secagg server`` does before binding: open and check the state, build."""
    state = open_server_state(config)
    try:
        build_server(config, InProcessHub(), state.store, ledger=state.ledger)
    finally:
        state.close()


def _digests(tmp_path: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(tmp_path.glob("state.sqlite*"))
        if not p.name.endswith(".lock")
    }


# --- 1. [dp] must say what the stored rounds ran with -----------------------------------------

DP = {"clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-3}


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        (None, DP, "rounds 1 to 2 (2 rounds) ran without DP"),
        (DP, None, "ran with [dp] unit = 'client', mechanism = 'central', this config has no"),
        (
            DP,
            {**DP, "mechanism": "distributed"},
            "mechanism = 'central', this config has unit = 'client', mechanism = 'distributed'",
        ),
    ],
    ids=["dp-added", "dp-removed", "mechanism-changed"],
)
def test_a_dp_config_that_contradicts_the_stored_rounds_is_refused_before_anything_is_written(
    tmp_path: Path, before: dict[str, Any] | None, after: dict[str, Any] | None, message: str
) -> None:
    first = _config(tmp_path, 2, **({"dp": before} if before else {}))
    run_every_round(first)
    untouched = _digests(tmp_path)
    second = _config(tmp_path, 4, **({"dp": after} if after else {}))
    with pytest.raises(ConfigurationError) as refused:
        _restart(second)
    text = str(refused.value)
    assert text.startswith("[dp] contradicts the rounds this state holds: "), text
    assert message in text
    assert "\n" not in text
    assert _digests(tmp_path) == untouched  # no row charged, no ledger row written
    _restart(_config(tmp_path, 4, **({"dp": before} if before else {})))  # unchanged: goes on


def test_a_round_the_ledger_lacks_is_judged_by_its_stored_epsilon(tmp_path: Path) -> None:
    """The one round a crash may leave out of the ledger is rebuilt from the store with
    the config's DP block: a changed [dp] must be refused before that row is written."""
    run_every_round(_config(tmp_path, 1))
    # as if the server died between the store's commit of round 1 and its ledger row
    _drop_last_row(tmp_path / "state.sqlite.ledger")
    untouched = _digests(tmp_path)
    with pytest.raises(ConfigurationError, match=r"\[dp\] contradicts .*: round 1 ran without DP"):
        _restart(_config(tmp_path, 4, dp=DP))
    assert _digests(tmp_path) == untouched


def _drop_last_row(ledger_path: Path) -> None:
    """What a crash between the store's commit and the ledger's append leaves."""
    drop_last_ledger_rows(ledger_path, ledger_path.parent / "state.sqlite.ledger-key")


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"contributed": ["b1", "b2"], "epsilon": None}, "released without DP"),
        ({"contributed": ["b1"], "epsilon": 1.5, "noise_contributors": 2}, "distributed"),
    ],
)
def test_the_central_restore_refuses_a_round_it_did_not_release(
    stored: dict[str, Any], message: str
) -> None:
    config = _config(Path("/nonexistent"), 2, dp=DP)
    mechanism = config.mechanism()
    with pytest.raises(ConfigurationError, match=message):
        mechanism.restore(stored)


def test_an_older_central_round_with_its_epsilon_is_still_charged_as_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rounds stored before 2026-12-02 kept their epsilon but not their parameters."""
    config = _config(Path("/nonexistent"), 2, dp=DP)
    mechanism = config.mechanism()
    mechanism.restore({"contributed": ["b1", "b2", "b3"], "epsilon": 3.2})
    assert mechanism.epsilon_after_next(contributors=3, participants=None) > 0
    assert "charged as configured" in caplog.text


def test_the_distributed_restore_refuses_a_round_without_noise_shares() -> None:
    config = _config(Path("/nonexistent"), 2, dp={**DP, "mechanism": "distributed"})
    mechanism = config.mechanism()
    with pytest.raises(ConfigurationError, match="released without DP"):
        mechanism.restore({"contributed": ["b1", "b2"], "epsilon": None})
    with pytest.raises(ConfigurationError, match="released by the central mechanism"):
        mechanism.restore({"epsilon": 1.0, "charged": {"noise_multiplier": 1.0}})


# --- 3. a model that is not finite is never adopted --------------------------------------------


@pytest.mark.parametrize("dp", [None, DP], ids=["no-dp", "central-dp"])
def test_a_round_whose_model_would_not_be_finite_aborts_and_keeps_the_model(
    tmp_path: Path, dp: dict[str, Any] | None
) -> None:
    """A learning rate that overflows the model (the config now refuses inf; this one
    got past it) aborts the round, keeps the previous model and checkpoint, and, with
    DP, keeps the charge of the mean that was released (the ledger still verifies)."""
    config = _config(tmp_path, 1, **({"dp": dp} if dp else {}))
    object.__setattr__(config, "server_learning_rate", float("inf"))
    hub = InProcessHub()
    for i, name in enumerate(NAMES):
        target = np.full(D, 0.01 * (i + 1))
        client = FederationClient(
            name, lambda m, t=target: t - m, hub.connect(name), policy=BranchPolicy()
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": IDLE, "rounds": 2}, daemon=True
        ).start()
    state = open_server_state(config)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        results = server.run(wait_for_clients=IDLE, max_attempts=2)
        assert [r.status for r in results] == ["aborted", "aborted"]
        assert all("non-finite parameters" in str(r.reason) for r in results)
        assert np.array_equal(server.model, np.zeros(D))  # the previous model, kept
        assert np.isfinite(server.model).all()
        epsilon = server.mechanism.epsilon_after_next(contributors=3, participants=None)
    finally:
        state.close()
    assert (epsilon is None) == (dp is None)  # with DP: both released means are charged
    audit = verify_ledger(tmp_path / "state.sqlite.ledger")
    assert audit.ok, audit.first_failure
    # a restart charges the same (the released means are charged as revealed sums)
    state = open_server_state(config)
    try:
        again = build_server(config, InProcessHub(), state.store, ledger=state.ledger)
        assert again.mechanism.epsilon_after_next(contributors=3, participants=None) == epsilon
        assert np.array_equal(again.model, np.zeros(D))
    finally:
        state.close()


# --- 4. a damaged ledger is not "repaired" by appending to it ----------------------------------


def _delete_row(ledger_path: Path, seq: int) -> None:
    """Delete one row and leave the signed head as it was (what audit verify fails)."""
    db = sqlite3.connect(ledger_path)
    try:
        db.execute("DELETE FROM ledger WHERE seq = ?", (seq,))
        db.commit()
    finally:
        db.close()


def test_a_ledger_cut_below_its_signed_head_is_refused_not_reconstructed(tmp_path: Path) -> None:
    """The audit: a good 3-row ledger with seq 3 deleted. The server logged "round 3
    was missing and has been reconstructed from the store", wrote the row at seq 4 and
    ran; verify still failed."""
    config = _config(tmp_path, 3)
    run_every_round(config)
    ledger = tmp_path / "state.sqlite.ledger"
    _delete_row(ledger, 3)
    assert not verify_ledger(ledger).ok  # what an auditor already saw
    untouched = _digests(tmp_path)
    more = _config(tmp_path, 5)
    with pytest.raises(LedgerError) as refused:
        open_server_state(more)
    text = str(refused.value)
    assert "fails its chain check" in text and "signed head" in text, text
    assert "\n" not in text
    assert _digests(tmp_path) == untouched  # nothing appended, nothing rebuilt


def test_the_backfill_itself_refuses_a_broken_chain(tmp_path: Path) -> None:
    """A server built without the launcher's checks (a program's own) refuses too."""
    config = _config(tmp_path, 3)
    run_every_round(config)
    ledger_path = tmp_path / "state.sqlite.ledger"
    _delete_row(ledger_path, 3)
    key = LedgerKey.load(tmp_path / "state.sqlite.ledger-key")
    store = ServerStore(tmp_path / "state.sqlite")
    ledger = Ledger(ledger_path, key)
    try:
        with pytest.raises(LedgerError, match="fails its chain check"):
            FederationServer(config, InProcessHub(), store, ledger=ledger)
        assert [e["round"] for e in ledger.entries()] == [1, 2]
    finally:
        ledger.close()
        store.close()


def test_a_crash_between_the_two_commits_is_still_rebuilt(tmp_path: Path) -> None:
    """The honest case the backfill exists for: the chain verifies and ends one round
    before the store (its head signed over the rows it has)."""
    config = _config(tmp_path, 2)
    run_every_round(config)
    ledger = tmp_path / "state.sqlite.ledger"
    _drop_last_row(ledger)
    _restart(_config(tmp_path, 3))
    audit = verify_ledger(ledger)
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1, 2]
    assert audit.chain.rows[1].entry.get("reconstructed") is True


# --- 5. a changed dimension names the key and the state's size ----------------------------------


def test_a_changed_dimension_names_the_key_and_what_the_state_holds(tmp_path: Path) -> None:
    """It said only "the model must have 20 parameters"."""
    run_every_round(_config(tmp_path, 1))
    changed = FederationConfig.from_dict(
        {
            "federation": {"name": "restart", "clients": NAMES, "dimension": 20, "rounds": 2},
            "backend": {"name": "secagg+"},
            "server": {"state": str(tmp_path / "state.sqlite")},
        }
    )
    with pytest.raises(ConfigurationError) as refused:
        _restart(changed)
    assert str(refused.value).startswith(
        "federation.dimension = 20 but the state's checkpoint has 10 parameters: keep "
        "federation.dimension as it was"
    )
