"""A ledger row rebuilt after a crash says why, from what, and which fields it lacks.

Before, a rebuilt row carried only ``reconstructed: true``: ``audit verify`` and the
report said nothing of it, and an auditor could not tell a row lost to a full disk from
a round a crash interrupted, nor which fields are the round's own record (the state
keeps no backend details and no dropouts). Rows written before the record existed
still verify, reported as rebuilt with the provenance not recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.errors import ConfigurationError
from secagg.ledger import LedgerKey, export_public_key
from secagg.ledger.entry import FROM_STATE, LedgerEntry, Reconstruction
from secagg.ledger.report import build_report
from secagg.ledger.verify import verify_ledger

CAUSE = "the ledger append failed after the state recorded the round (ledger write failed: full)"
PROVENANCE = Reconstruction(
    FROM_STATE,
    CAUSE,
    ("round", "status", "participants", "model_sha256"),
    {"backend": "the restarted server's backend name only", "dropouts": "none recorded"},
)


def _rows(second: dict) -> list[dict]:
    return [ledger_row(1, None, None), second, ledger_row(3, None, None)]


def _cli(path: Path, key: LedgerKey, *args: str) -> tuple[int, str]:
    pem = export_public_key(key.public_key, path.with_suffix(".pub"))
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem), *args])
    return result.exit_code, result.output


def test_a_rebuilt_rows_provenance_is_in_verify_its_json_and_the_report(tmp_path: Path) -> None:
    rebuilt = ledger_row(2, None, None, reconstructed=True, reconstruction=PROVENANCE)
    assert rebuilt["reconstruction"] == {
        "source": "state",
        "cause": CAUSE,
        "recovered": ["round", "status", "participants", "model_sha256"],
        "not_recovered": {
            "backend": "the restarted server's backend name only",
            "dropouts": "none recorded",
        },
    }
    path, key = write_ledger(tmp_path / "l.sqlite", _rows(rebuilt))
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert result.rebuilt == [(2, 2, PROVENANCE)]
    (line,) = result.rebuilt_lines()
    assert line.startswith("round 2 (row 2) was rebuilt after the fact from the server's state")
    assert CAUSE in line and "Not recovered: backend: the restarted server's" in line
    # a ledger without DP exits 3 (NOT PRIVATE); the note is printed all the same
    status, output = _cli(path, key)
    assert status == 3
    assert "note: 1 row rebuilt after the fact (reconstructed)" in output
    assert f"  {line}" in output.splitlines()
    status, output = _cli(path, key, "--json")
    payload = json.loads(output)
    assert payload["reconstructed_rows"] == [
        {"seq": 2, "round": 2, "provenance": rebuilt["reconstruction"]}
    ]
    text, _ = build_report(path, key.public_key)
    assert "| 2 | complete (rebuilt) |" in text
    assert "## Rows rebuilt after the fact" in text and f"- {line}." in text


def test_an_older_rebuilt_row_without_provenance_verifies_and_says_so(tmp_path: Path) -> None:
    """Backward compatible: ``reconstructed: true`` alone, as rows before 2026-12-05."""
    path, key = write_ledger(
        tmp_path / "l.sqlite", _rows(ledger_row(2, None, None, reconstructed=True))
    )
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert result.rebuilt == [(2, 2, None)]
    assert "why and from what are not recorded" in result.rebuilt_lines()[0]
    status, output = _cli(path, key, "--json")
    assert status == 3  # no DP in it: NOT PRIVATE, and intact
    assert json.loads(output)["reconstructed_rows"] == [{"seq": 2, "round": 2, "provenance": None}]


def test_a_ledger_without_rebuilt_rows_lists_none(tmp_path: Path) -> None:
    path, key = write_ledger(tmp_path / "l.sqlite", _rows(ledger_row(2, None, None)))
    result = verify_ledger(path, key.public_key)
    assert result.ok and result.rebuilt == [] and result.rebuilt_lines() == []
    assert "rebuilt" not in _cli(path, key)[1]


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"reconstructed": "yes"}, "reconstructed must be true or false"),
        ({"reconstruction": PROVENANCE.as_row()}, "not marked reconstructed"),
        ({"reconstructed": True, "reconstruction": ["state"]}, "must be an object"),
        (
            {"reconstructed": True, "reconstruction": PROVENANCE.as_row() | {"cause": 3}},
            "reconstruction.cause",
        ),
        (
            {"reconstructed": True, "reconstruction": PROVENANCE.as_row() | {"recovered": [1]}},
            "reconstruction.recovered",
        ),
        (
            {"reconstructed": True, "reconstruction": PROVENANCE.as_row() | {"not_recovered": []}},
            "reconstruction.not_recovered",
        ),
    ],
)
def test_a_malformed_reconstruction_record_fails_naming_the_row(
    tmp_path: Path, changes: dict, said: str
) -> None:
    path, key = write_ledger(tmp_path / "l.sqlite", _rows(ledger_row(2, None, None) | changes))
    result = verify_ledger(path, key.public_key)
    assert result.chain.ok and not result.ok
    assert str(result.first_failure).startswith("row 2 (round 2): its reconstruction record")
    assert said in str(result.first_failure)
    status, output = _cli(path, key)
    assert status == 1 and output.startswith(f"FAILED: {path}: row 2 (round 2)")
    assert len(output.strip().splitlines()) == 1


def test_an_entry_refuses_a_reconstruction_record_without_the_mark() -> None:
    with pytest.raises(ConfigurationError, match="not marked reconstructed"):
        LedgerEntry(
            federation="f",
            round=1,
            status="complete",
            reason=None,
            started_at=None,
            finished_at=1.0,
            backend={},
            participants=(),
            contributed=0,
            dropouts={},
            dp=None,
            epsilon=None,
            delta=None,
            model_sha256="0" * 64,
            reconstruction=PROVENANCE,
        )
