"""``secagg audit verify --json`` prints the same keys whatever the ledger.

Why: on a file that could not be read as a ledger (corrupt, not a database) the object
held seven keys while a read ledger's holds thirty-odd, so a script reading
``epsilon``, ``delta``, ``delta_missing_reason`` or ``rounds_accounted`` got a KeyError
exactly when something was wrong; a missing ledger printed no JSON at all, only a
usage line on stderr. Every object now carries every key (null where unknown), the
reason in ``error`` (null for a read ledger), and the exit status docs/audit.md
promises: 1 for a damaged ledger, 2 (usage) for a missing one or a file that is no
ledger at all (since 2026-12-06).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import export_public_key


def _verify_json(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["audit", "verify", *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def _read_keys(tmp_path: Path) -> tuple[str, ...]:
    """The keys of a read (verified) ledger's object, in order."""
    rows, _ = central_client_rows([("a", "b"), ("a", "c")], 1.5, 1e-5)
    path, key = write_ledger(tmp_path / "read.ledger", rows)
    pub = export_public_key(key.public_key, tmp_path / "read.pub")
    status, payload = _verify_json(str(path), "--pubkey", str(pub))
    assert status == 0 and payload["verdict"] == "VERIFIED"
    assert "error" in payload and payload["error"] is None
    return tuple(payload)


def test_a_read_ledgers_keys_are_the_listed_ones(tmp_path: Path) -> None:
    from secagg.apps.audit.cli import VERIFY_JSON_KEYS

    assert _read_keys(tmp_path) == VERIFY_JSON_KEYS


def _corrupt(tmp_path: Path) -> Path:
    rows, _ = central_client_rows([("a", "b")], 1.5, 1e-5)
    path, _ = write_ledger(tmp_path / "whole.ledger", rows)
    cut = tmp_path / "cut.ledger"
    cut.write_bytes(path.read_bytes()[:300])
    return cut


def _not_a_database(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("round 1: fine\n")
    return path


@pytest.mark.parametrize(
    ("make", "status", "verdict", "error"),
    [
        (_corrupt, 1, "FAILED", "{path} cannot be read as a ledger"),
        # the wrong file: a usage mistake since 2026-12-06 (test_audit_not_a_ledger.py)
        (_not_a_database, 2, "USAGE ERROR", "{path} is not a privacy ledger"),
    ],
)
def test_a_file_that_is_no_ledger_gives_every_key_null(
    tmp_path: Path, make: Callable[[Path], Path], status: int, verdict: str, error: str
) -> None:
    path = make(tmp_path)
    code, payload = _verify_json(str(path), "--first-round", "1")
    assert code == status
    assert tuple(payload) == _read_keys(tmp_path)
    assert payload["verdict"] == verdict and payload["exit_status"] == status
    assert payload["ok"] is False and payload["private"] is None
    assert payload["error"] == payload["first_failure"]
    assert error.format(path=path) in payload["error"]
    for unknown in ("epsilon", "delta", "delta_missing_reason", "rounds_accounted", "rows"):
        assert payload[unknown] is None, unknown
    assert payload["first_round"] == 1


def test_a_missing_ledger_gives_every_key_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "gone.ledger"
    result = CliRunner().invoke(main, ["audit", "verify", str(missing), "--json"])
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert tuple(payload) == _read_keys(tmp_path)
    assert payload["verdict"] == "USAGE ERROR" and payload["exit_status"] == 2
    assert payload["error"] == f"no ledger at {missing}"
    assert payload["epsilon"] is None and payload["delta"] is None
    assert f"no ledger at {missing}" in result.stderr  # the usage line, as without --json
