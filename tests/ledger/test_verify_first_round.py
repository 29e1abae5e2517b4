"""A ledger must begin at round 1, unless the auditor declares where it begins.

The chain starts at a genesis hash, so rows cut from the front break it; but a new,
well-formed chain whose first row is round 5 (the server lost its ledger and a new one
began mid-federation, or an operator started a fresh ledger) verified, its epsilon
covering rounds 5 on only while rounds 1-4 had released models too. Now it fails
(exit 1), naming the missing rounds; ``--first-round N`` declares rounds 1 to N-1
accounted elsewhere, and every epsilon printed is then labelled as covering rounds N on
only (the report no longer calls such a partial figure "within" a budget).

The honest cases still pass: rounds from 1, round 1 aborted, and a real server that
crashed mid-round 1 and was restarted twice, resuming its state and ledger.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from _ledgers import central_client_rows, ledger_row, write_central_config, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.errors import ConfigurationError
from secagg.ledger import LedgerKey, export_public_key
from secagg.ledger.report import build_report
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]


def _renumbered(first: int) -> tuple[list[dict], float]:
    """Three well-formed rows (per-client central DP, each claiming its replay) that
    begin at round ``first``: a chain of their own, signed by the ledger key."""
    rows, epsilon = central_client_rows(COHORTS, Z, DELTA)
    return [row | {"round": first + i} for i, row in enumerate(rows)], epsilon


def _ledger(tmp_path: Path, first: int) -> tuple[Path, LedgerKey, float]:
    rows, epsilon = _renumbered(first)
    path, key = write_ledger(tmp_path / f"from-{first}.ledger", rows)
    return path, key, epsilon


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _pub(tmp_path: Path, key: LedgerKey) -> str:
    return str(export_public_key(key.public_key, tmp_path / "ledger.pub"))


@pytest.mark.parametrize(
    ("first", "missing"), [(5, "rounds 1-4 are not in this ledger"), (2, "round 1 is not")]
)
def test_a_ledger_that_begins_after_round_1_fails_naming_the_missing_rounds(
    tmp_path: Path, first: int, missing: str
) -> None:
    path, key, _ = _ledger(tmp_path, first)
    result = verify_ledger(path, key.public_key)
    assert result.chain.ok  # the chain itself is intact: only its start is wrong
    assert not result.ok
    assert result.first_failure is not None
    assert result.first_failure.startswith(f"row 1 is round {first}: {missing}")
    assert f"--first-round {first}" in result.first_failure
    status, out, err = _cli("audit", "verify", str(path), "--pubkey", _pub(tmp_path, key))
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"FAILED: {path}: row 1 is round {first}")
    assert "Traceback" not in err


def test_the_report_of_such_a_ledger_says_failed(tmp_path: Path) -> None:
    path, key, _ = _ledger(tmp_path, 5)
    text, _ = build_report(path, key.public_key)
    assert "**FAILED**: row 1 is round 5: rounds 1-4 are not in this ledger" in text


def test_first_round_declares_the_earlier_rounds_and_labels_every_epsilon(
    tmp_path: Path,
) -> None:
    path, key, epsilon = _ledger(tmp_path, 5)
    result = verify_ledger(path, key.public_key, first_round=5)
    assert result.ok and result.private, result.first_failure
    assert result.excluded_rounds == "rounds 1-4"
    assert any("every epsilon here covers rounds 5 on only" in note for note in result.notes)
    assert result.epsilons[-1][1] == pytest.approx(epsilon)
    pub = _pub(tmp_path, key)
    status, out, err = _cli("audit", "verify", str(path), "--pubkey", pub, "--first-round", "5")
    assert status == 0, err
    first = out.splitlines()[0]
    assert first.startswith("VERIFIED: 3 rows")
    assert "epsilon of rounds 5 on only (rounds 1-4 excluded: --first-round)" in first
    assert "cumulative epsilon" not in first  # that would read as the federation's total
    status, out, _ = _cli(
        "audit", "verify", str(path), "--pubkey", pub, "--first-round", "5", "--json"
    )
    assert status == 0 and json.loads(out)["first_round"] == 5


def test_a_partial_epsilon_is_not_called_within_the_budget(tmp_path: Path) -> None:
    """The report compared the rounds-5-on figure with the config's budget and said
    "within it"; the federation's epsilon includes rounds 1-4, so it is not comparable.
    A partial figure already above the budget still fails (the total is no smaller)."""
    rows, epsilon = _renumbered(5)
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    config = write_central_config(
        tmp_path / "f.toml",
        name="test",
        clients=["a", "b", "c", "d"],
        rate=0.5,
        z=Z,
        delta=DELTA,
        budget=epsilon + 1.0,
    )
    from secagg.apps.audit.cli import _expected

    expected = _expected(str(config))
    text, _ = build_report(path, key.public_key, expected, first_round=5)
    assert "**VERIFIED**" in text
    spent = next(line for line in text.splitlines() if line.startswith("- budget spent"))
    assert "(rounds 5 on only: --first-round)" in spent
    assert "not comparable (rounds 1-4 are not in this ledger" in spent
    assert "within it" not in spent
    assert expected is not None
    tight = dataclasses.replace(expected, epsilon_budget=1.0)
    result = verify_ledger(path, key.public_key, expected=tight, first_round=5)
    assert not result.ok and "ABOVE the config's epsilon_budget" in str(result.failure)


@pytest.mark.parametrize(
    ("first", "declared", "words"),
    [
        (1, 5, "row 1 is round 1, but --first-round says this ledger begins at round 5"),
        (5, 3, "rounds 3-4 are in neither"),
        (5, 4, "round 4 is in neither"),
    ],
)
def test_a_first_round_that_does_not_match_the_ledger_fails(
    tmp_path: Path, first: int, declared: int, words: str
) -> None:
    path, key, _ = _ledger(tmp_path, first)
    result = verify_ledger(path, key.public_key, first_round=declared)
    assert not result.ok and words in str(result.failure)


def test_a_first_round_that_is_no_round_number_is_a_usage_error(tmp_path: Path) -> None:
    path, key, _ = _ledger(tmp_path, 1)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigurationError, match="--first-round"):
            verify_ledger(path, key.public_key, first_round=bad)  # type: ignore[arg-type]
    status, _, err = _cli("audit", "verify", str(path), "--first-round", "0")
    assert status == 2 and "--first-round" in err and "Traceback" not in err
    status, _, err = _cli("audit", "report", str(path), "--first-round", "x")
    assert status == 2 and "--first-round" in err


def test_an_honest_ledger_from_round_1_with_round_1_aborted_verifies(tmp_path: Path) -> None:
    rows, _ = central_client_rows(COHORTS, Z, DELTA)
    aborted = ledger_row(1, None, None, status="aborted", reason="below threshold")
    shifted = [aborted] + [row | {"round": row["round"] + 1} for row in rows]
    path, key = write_ledger(tmp_path / "honest.ledger", shifted)
    result = verify_ledger(path, key.public_key)
    assert result.ok and result.private, result.first_failure
    assert result.excluded_rounds is None
    assert not any("--first-round" in note for note in result.notes)
    empty, empty_key = write_ledger(tmp_path / "empty.ledger", [])
    assert verify_ledger(empty, empty_key.public_key, first_round=7).ok  # no row to begin


# -- the honest runtime: a crash mid-round 1, then two restarts resuming the state --------

NAMES = [f"branch-{i}" for i in range(4)]
D = 8


def _config(rounds: int):  # type: ignore[no-untyped-def]
    from secagg.runtime.config import FederationConfig

    return FederationConfig.from_dict(
        {
            "federation": {"name": "restart", "clients": NAMES, "dimension": D, "rounds": rounds},
            "backend": {"name": "secagg", "value_bound": 1.0},
            "dp": {"clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-5},
            "deadlines": {"phase_seconds": 60.0},
        }
    )


def _start_clients(hub, rounds: int) -> None:  # type: ignore[no-untyped-def]
    from secagg.aggregation.policy import BranchPolicy
    from secagg.runtime.client import FederationClient

    for i, name in enumerate(NAMES):
        target = np.linspace(-1, 1, D) * 0.05 * (i + 1)
        client = FederationClient(
            name,
            lambda m, t=target: t - m,
            hub.connect(name),
            policy=BranchPolicy(allow_plain=True),
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 60, "rounds": rounds}, daemon=True
        ).start()


def test_a_real_server_restarted_twice_writes_a_ledger_that_verifies_from_round_1(
    tmp_path: Path,
) -> None:
    """Round 1 was running when the server died (no row); the restart aborts and rebuilds
    it, runs rounds 2-3; a second restart resumes and runs round 4. The ledger is rows
    1-4, round 1 aborted and rebuilt, and verifies without --first-round."""
    from secagg.ledger import Ledger
    from secagg.runtime.server import FederationServer
    from secagg.runtime.store import ServerStore
    from secagg.transport.inprocess import InProcessHub

    store = ServerStore(tmp_path / "state.sqlite")
    store.begin_round(1, NAMES)  # the crash: round 1 recorded as running, no ledger row
    key = LedgerKey.generate()
    hub = InProcessHub()
    _start_clients(hub, rounds=2)
    ledger = Ledger(tmp_path / "state.ledger", key)
    first = FederationServer(_config(2), hub, store, ledger=ledger)
    assert [r.status for r in first.run(wait_for_clients=120)] == ["complete"] * 2
    hub = InProcessHub()  # the branches reconnect to the restarted server
    _start_clients(hub, rounds=1)
    second = FederationServer(_config(3), hub, store, ledger=ledger)
    assert [r.status for r in second.run(wait_for_clients=120)] == ["complete"]
    ledger.close()
    audit = verify_ledger(tmp_path / "state.ledger", key.public_key)
    assert audit.ok, audit.first_failure
    entries = [row.entry for row in audit.chain.rows]
    assert [e["round"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["status"] == "aborted" and entries[0].get("reconstructed") is True
    assert audit.excluded_rounds is None
