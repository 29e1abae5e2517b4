"""After a round whose ledger append failed (or a process killed between its state's
commit and its ledger append), the restarted server sends the model its ledger records,
and the ledger's epsilons are those of the models released.

A check of merge 8dcdad5's model adoption order (second review, 2026-12-07), with central
DP so that every row carries a charge: round 2's state commit goes through and its append
does not. The next process rebuilds round 2's row from the state; then every row's
``model_sha256`` is its round's checkpoint, round 3's start carries round 2's checkpoint
(the model of the last row before it), and each row's epsilon is the one a run without
the failure signs (two rounds each released once, then three: no round charged twice or
missed).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ledgered_federation import NAMES, RecordingHub, ledger_path, start_branches
from _threads import BOUND

from secagg.ledger.chain import Ledger, read_chain
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.wire import RoundStart

pytestmark = pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")

ROUNDS = 3


class _Killed(BaseException):
    """The server's process dies here (no handler of the runtime's takes it)."""


def _config(tmp_path: Path) -> FederationConfig:
    """Five branches, every one sampled, SecAgg+ with central DP, state in ``tmp_path``."""
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "resumed",
                "clients": NAMES,
                "dimension": 8,
                "rounds": ROUNDS,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
            "dp": {"unit": "client", "mechanism": "central", "clip": 1.0, "delta": 1e-5},
        }
    )


def _rows(config: FederationConfig) -> dict[int, dict[str, Any]]:
    return {row.entry["round"]: row.entry for row in read_chain(ledger_path(config)).rows}


def _run(config: FederationConfig, hub: RecordingHub) -> None:
    """One server process on ``config``'s state until it returns or raises; its
    branches are told the end (or, killed, lose their sessions)."""
    parties = start_branches(hub, config, until_end=True)
    state = open_server_state(config, init=not Path(config.server.state).exists())
    try:
        build_server(config, hub, state.store, ledger=state.ledger).run(wait_for_clients=BOUND)
    finally:
        state.close()
        for name in NAMES:
            hub.disconnect(name)
        for name, party in parties.items():
            assert party.done.wait(BOUND), name


@pytest.mark.parametrize("failure", ["no space", "killed"])
def test_the_resumed_server_sends_the_ledgered_model_and_signs_true_epsilons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """Round 2's append fails (no space: the server stops with the error) or the process
    dies in it; the next process resumes. Every row vouches for its round's checkpoint,
    round 3 starts from round 2's, and the epsilons are a clean run's."""
    clean = _config(tmp_path / "clean")
    (tmp_path / "clean").mkdir()
    _run(clean, RecordingHub())
    expected = {n: row["privacy"]["epsilon"] for n, row in _rows(clean).items()}
    assert sorted(expected) == [1, 2, 3] and expected[1] < expected[2] < expected[3]

    config = _config(tmp_path)
    append = Ledger.append
    raised: list[int] = []

    def fail_round_2_once(ledger: Ledger, entry: dict[str, object]) -> int:
        if entry.get("round") == 2 and not raised:
            raised.append(2)
            raise OSError(28, "No space left on device") if failure == "no space" else _Killed()
        return append(ledger, entry)

    monkeypatch.setattr(Ledger, "append", fail_round_2_once)
    hub = RecordingHub()
    with pytest.raises(OSError if failure == "no space" else _Killed):
        _run(config, hub)
    assert sorted(_rows(config)) == [1]
    _run(config, hub)  # the next process: rebuilds round 2's row, runs round 3

    rows = _rows(config)
    assert sorted(rows) == [1, 2, 3]
    assert {n: row["privacy"]["epsilon"] for n, row in rows.items()} == pytest.approx(
        expected, rel=1e-12
    )
    state = open_server_state(config)
    try:
        checkpoints = {n: state.store.checkpoint_digest(n) for n in rows}
    finally:
        state.close()
    assert {n: row["model_sha256"] for n, row in rows.items()} == checkpoints
    starts = [m for _, m in hub.sent if isinstance(m, RoundStart) and m.round == 3]
    assert len(starts) == len(NAMES)
    for start in starts:
        assert np.array_equal(start.model, _checkpoint_model(config, 2))


def _checkpoint_model(config: FederationConfig, number: int) -> np.ndarray:
    """Round ``number``'s checkpoint in the wire's float32."""
    db = sqlite3.connect(config.server.state)
    try:
        (blob,) = db.execute("SELECT model FROM checkpoints WHERE round = ?", (number,)).fetchone()
    finally:
        db.close()
    return np.frombuffer(blob, dtype="<f8").astype(np.float32)
