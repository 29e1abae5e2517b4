"""A round that charges nothing, after a restart under another delta, claims the
epsilon its accountant gives at the delta the row records.

Ledger review, 2026-12-05: an aborted round's row carried the last charged round's
claim, accounted at the delta of the run before the restart, beside the new config's
delta: an (epsilon, delta) pair no accountant produced (here rounds 1-2 at 1e-3 claimed
4.85 beside delta 1e-4, where they spend 5.77). ``audit verify`` printed the charged
rows' delta and noted the odd row; the row itself still misstated. A real federation
(three branches over the in-process transport, SecAgg+, dimension 10), restarted the
way ``secagg server`` restarts it (:func:`~secagg.runtime.launch.open_server_state`,
then :func:`~secagg.runtime.launch.build_server`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _delta_federation import NAMES, Z, delta_config, run_every_round
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accountants import PerClientAccountant
from secagg.ledger import export_public_key, verify_ledger
from secagg.ledger.chain import LedgerKey
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.transport.inprocess import InProcessHub


def _config(tmp_path: Path, rounds: int, delta: float) -> FederationConfig:
    return delta_config(tmp_path, rounds, delta, "redelta")


_run = run_every_round


def _abort_one_round(config: FederationConfig) -> str:
    """Restart under ``config`` and run one round nobody is connected for: it aborts
    (fewer than 2 clients) and charges nothing. Its status."""
    state = open_server_state(config)
    try:
        server = build_server(config, InProcessHub(), state.store, ledger=state.ledger)
        return server.run_round().status
    finally:
        state.close()


def _at(delta: float, rounds: int) -> float:
    """The accountant's epsilon of ``rounds`` rounds charged to every branch, at ``delta``."""
    accountant = PerClientAccountant(delta, "pld")
    for _ in range(rounds):
        accountant.step(Z, NAMES)
    return accountant.epsilon()


def _last_row(tmp_path: Path) -> tuple[dict[str, Any], Path, str]:
    ledger = tmp_path / "state.sqlite.ledger"
    key = LedgerKey.load(tmp_path / "state.sqlite.ledger-key")
    pub = export_public_key(key.public_key, tmp_path / "ledger.pub")
    result = verify_ledger(ledger, key.public_key)
    assert result.ok, result.failure
    return result.chain.rows[-1].entry, ledger, str(pub)


def test_an_aborted_row_after_a_restart_under_a_new_delta_claims_its_accountants_epsilon(
    tmp_path: Path,
) -> None:
    _run(_config(tmp_path, 2, 1e-3))
    before, _, _ = _last_row(tmp_path)
    assert before["privacy"] == {"epsilon": _at(1e-3, 2), "delta": 1e-3}
    assert _abort_one_round(_config(tmp_path, 3, 1e-4)) == "aborted"
    row, ledger, pub = _last_row(tmp_path)
    assert row["status"] == "aborted" and row["round"] == 3
    assert row["privacy"]["delta"] == row["dp"]["delta"] == 1e-4
    # the two charged rounds at the row's delta, not the 1e-3 claim carried on
    assert row["privacy"]["epsilon"] == _at(1e-4, 2) > _at(1e-3, 2)
    result = verify_ledger(ledger, LedgerKey.load(tmp_path / "state.sqlite.ledger-key").public_key)
    assert result.ok and result.epsilons[-1][1] == _at(1e-4, 2)
    assert result.claim_delta() == 1e-4  # the delta the figure printed holds at
    assert not [n for n in result.notes if "charged nothing" in n], result.notes
    outcome = CliRunner().invoke(main, ["audit", "verify", str(ledger), "--pubkey", pub])
    assert outcome.exit_code == 0, outcome.output
    assert "charged nothing" not in outcome.output


def test_an_aborted_row_under_the_same_delta_carries_the_last_claim(tmp_path: Path) -> None:
    """Without a restart's new delta the accountant's figure is the last claim itself."""
    _run(_config(tmp_path, 2, 1e-3))
    assert _abort_one_round(_config(tmp_path, 3, 1e-3)) == "aborted"
    row, ledger, pub = _last_row(tmp_path)
    assert row["privacy"] == {"epsilon": _at(1e-3, 2), "delta": 1e-3}
    outcome = CliRunner().invoke(main, ["audit", "verify", str(ledger), "--pubkey", pub])
    assert outcome.exit_code == 0 and "charged nothing" not in outcome.output
