"""A row rebuilt after a restart under another delta claims the accountant's epsilon at
the delta it records, over the rounds charged up to its own.

Runtime review, 2026-12-05: a completed round whose ledger row was lost (a crash, or a
failed append, between the state's commit and the ledger's) was rebuilt with the
round's stored claim, accounted at the delta of the run before the restart, beside the
new config's delta: an (epsilon, delta) pair no accountant produced, which ``secagg
audit verify`` fails (here rounds 1-2 at 1e-3 claimed 4.85 beside delta 1e-4, where
they spend 5.77). A rebuilt aborted row carried that old figure on too, and the server's
per-round log line showed it until a round completed. A real federation (three branches
over the in-process transport, SecAgg+, dimension 10), restarted the way ``secagg
server`` restarts it (:func:`~secagg.runtime.launch.open_server_state`, then
:func:`~secagg.runtime.launch.build_server`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from _delta_federation import NAMES, Z, delta_config, run_every_round
from _state import drop_last_ledger_rows
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accountants import PerClientAccountant
from secagg.dp.display import shown
from secagg.ledger import export_public_key, verify_ledger
from secagg.ledger.chain import Ledger, LedgerKey
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

OLD, NEW = 1e-3, 1e-4


def _config(tmp_path: Path, rounds: int, delta: float) -> FederationConfig:
    return delta_config(tmp_path, rounds, delta, "rebuilt")


_run = run_every_round


def _restart(config: FederationConfig, *, abort_a_round: bool = False) -> None:
    """Restart under ``config`` (which rebuilds the rows the ledger lacks); with
    ``abort_a_round``, run one round nobody is connected for (it aborts, charging nothing)."""
    state = open_server_state(config)
    try:
        server = build_server(config, InProcessHub(), state.store, ledger=state.ledger)
        if abort_a_round:
            assert server.run_round().status == "aborted"
    finally:
        state.close()


def _build_unchecked(config: FederationConfig) -> None:
    """A program that builds :class:`FederationServer` over its own store and ledger:
    nothing refuses a ledger more than one round short (:func:`build_server` would),
    so the server rebuilds every round it lacks."""
    store = ServerStore(config.server.state, create=False)
    ledger = Ledger(
        config.server.state + ".ledger", LedgerKey.load(config.server.state + ".ledger-key")
    )
    try:
        FederationServer(config, InProcessHub(), store, ledger=ledger)
    finally:
        ledger.close()
        store.close()


def _drop_rows(tmp_path: Path, count: int) -> None:
    drop_last_ledger_rows(
        tmp_path / "state.sqlite.ledger", tmp_path / "state.sqlite.ledger-key", count
    )


def _at(delta: float, rounds: int) -> float:
    """An independent replay: ``rounds`` rounds charged to every branch, at ``delta``."""
    accountant = PerClientAccountant(delta, "pld")
    for _ in range(rounds):
        accountant.step(Z, NAMES)
    return accountant.epsilon()


def _verified(tmp_path: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The ledger's verify result (which must pass) and its rows."""
    key = LedgerKey.load(tmp_path / "state.sqlite.ledger-key")
    result = verify_ledger(tmp_path / "state.sqlite.ledger", key.public_key)
    assert result.ok, result.failure
    return result, [row.entry for row in result.chain.rows]


def _cli_verifies(tmp_path: Path) -> str:
    key = LedgerKey.load(tmp_path / "state.sqlite.ledger-key")
    pub = export_public_key(key.public_key, tmp_path / "ledger.pub")
    ledger = str(tmp_path / "state.sqlite.ledger")
    outcome = CliRunner().invoke(main, ["audit", "verify", ledger, "--pubkey", str(pub)])
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


@pytest.mark.parametrize("lost", [1, 2], ids=["last-row", "last-two-rows"])
def test_a_completed_row_rebuilt_under_a_new_delta_claims_the_rounds_up_to_it_there(
    tmp_path: Path, lost: int
) -> None:
    _run(_config(tmp_path, 3, OLD))
    _drop_rows(tmp_path, lost)
    if lost == 1:  # a crash between the state's commit and the ledger's append
        _restart(_config(tmp_path, 3, NEW))
    else:
        _build_unchecked(_config(tmp_path, 3, NEW))
    result, rows = _verified(tmp_path)
    assert [row["round"] for row in rows] == [1, 2, 3]
    for row in rows[3 - lost :]:
        assert row["reconstructed"] is True and row["status"] == "complete"
        assert row["privacy"]["delta"] == row["dp"]["delta"] == NEW
        # the rounds charged up to and including this one, at the row's delta: not the
        # stored claim at 1e-3, and not every stored round (a later row's figure)
        assert row["privacy"]["epsilon"] == _at(NEW, row["round"]) > _at(OLD, row["round"])
    assert result.epsilons[-1][1] == _at(NEW, 3)
    assert result.claim_delta() == NEW
    _cli_verifies(tmp_path)


def test_a_completed_row_rebuilt_under_the_same_delta_claims_the_stored_figure(
    tmp_path: Path,
) -> None:
    """Without a new delta the replay is the round's own claim, to the last bit."""
    _run(_config(tmp_path, 3, OLD))
    _, before = _verified(tmp_path)
    _drop_rows(tmp_path, 1)
    _restart(_config(tmp_path, 3, OLD))
    _, rows = _verified(tmp_path)
    assert rows[-1]["reconstructed"] is True
    assert rows[-1]["privacy"] == before[-1]["privacy"] == {"epsilon": _at(OLD, 3), "delta": OLD}
    _cli_verifies(tmp_path)


def test_an_aborted_row_rebuilt_under_a_new_delta_states_the_charged_rounds_there(
    tmp_path: Path,
) -> None:
    """The row of a round that charged nothing, rebuilt: every round charged before it,
    at its own delta (as a live aborted row has since 2026-12-05), not the old claim."""
    _run(_config(tmp_path, 2, OLD))
    _restart(_config(tmp_path, 3, OLD), abort_a_round=True)
    _drop_rows(tmp_path, 1)
    _restart(_config(tmp_path, 3, NEW))
    result, rows = _verified(tmp_path)
    row = rows[-1]
    assert (row["round"], row["status"], row["reconstructed"]) == (3, "aborted", True)
    assert row["privacy"] == {"epsilon": _at(NEW, 2), "delta": NEW}
    assert result.claim_delta() == NEW
    assert not [n for n in result.notes if "charged nothing" in n], result.notes
    assert "charged nothing" not in _cli_verifies(tmp_path)


def test_the_round_line_after_a_restart_under_a_new_delta_shows_the_figure_there(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The per-round log line's epsilon before any round completes in this run: the
    restarted accountant's at the config's delta, not the stored claim at the old one."""
    _run(_config(tmp_path, 2, OLD))
    with caplog.at_level(logging.WARNING, logger="secagg.server"):
        _restart(_config(tmp_path, 3, NEW), abort_a_round=True)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("round 3 ")]
    assert f"epsilon {shown(_at(NEW, 2), 4, significant=True)}," in line, line
    assert shown(_at(NEW, 2), 4, significant=True) != shown(_at(OLD, 2), 4, significant=True)
