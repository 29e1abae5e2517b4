"""``secagg server``'s reads of its ledger's head for a stop's line (the head before
``serve``, the head after the stop) take a head that is not one the ledger's writer
stores as no head: never a traceback, never a wrong head printed.

Second review of helper-313's stop-line head (2026-12-07): the head was read as
``(int(seq), str(hash))`` from ``ledger_head`` with only SQLite's, OS and ledger errors
caught. A ledger file whose head row is not the writer's (a damaged file, one put in its
place: ``seq`` NULL, the hash a BLOB) made

* the read before ``serve``, which runs on every start, end the command in a
  ``TypeError`` traceback (exit 1) before any check of the start said what was wrong
  (here: the certificate folder that lacks its CA, exit 2);
* the stop's line, worked out as the stop is said, a ``TypeError`` traceback instead
  of the line (exit 1, not 143);
* a BLOB hash printed as ``ledger head 3:b'\\x00\\xff'``, a head that
  ``secagg audit verify --expect-head`` refuses and no ledger has.
"""

from __future__ import annotations

import re
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _finished_federation import federation_toml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import secagg.runtime.launch
from secagg.apps.cli import main
from secagg.apps.commands.parties import _Terminated
from secagg.apps.commands.server import _ledger_head, _ledger_rows_said
from secagg.ledger.chain import format_head, parse_head
from secagg.runtime.config import FederationConfig
from secagg.transport.waiting import ask_stop

#: head rows no ledger writer stores: (seq, hash)
BAD_HEADS: dict[str, tuple[Any, Any]] = {
    "null-seq": (None, "ab" * 32),
    "blob-hash": (3, b"\x00\xff"),
    "short-hash": (3, "abc"),
    "negative-seq": (-1, "ab" * 32),
    "text-seq": ("3", "ab" * 32),
}


def _write_head(path: Path, seq: Any, digest: Any) -> None:
    """A file at ``path`` with a ``ledger`` table and a ``ledger_head`` row, its columns
    untyped (a file that is not the writer's: the writer's schema refuses a NULL)."""
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY, entry TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS ledger_head (id INTEGER PRIMARY KEY, seq, hash)")
        db.execute("INSERT OR REPLACE INTO ledger_head VALUES (1, ?, ?)", (seq, digest))
        db.commit()
    finally:
        db.close()


def _said(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("secagg server:")]


@pytest.mark.parametrize("bad", sorted(BAD_HEADS))
def test_a_start_beside_a_ledger_whose_head_is_not_one_says_its_own_line(
    tmp_path: Path, bad: str
) -> None:
    """Before (null-seq): a ``TypeError`` traceback, exit 1, from the head read before
    ``serve``. Now the start goes on to its own checks: here the certificate folder,
    which was never created (exit 2, one line)."""
    toml = federation_toml(tmp_path, 1, record_level=False)
    _write_head(tmp_path / "state.sqlite.ledger", *BAD_HEADS[bad])
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    assert re.search(r"CA certificate not found", result.stderr), result.stderr


@pytest.mark.parametrize("bad", sorted(BAD_HEADS))
def test_a_stop_beside_a_ledger_whose_head_is_not_one_says_its_line_without_a_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    """The stop lands once the ledger holds a head no writer stores. Before: a
    ``TypeError`` traceback in place of the stop's line (null-seq), or the line with a
    head no ledger has (blob-hash: ``3:b'\\x00\\xff'``). Now: the stop's line, without
    a head, and 143."""
    toml = federation_toml(tmp_path, 1, record_level=False)
    config = FederationConfig.load(toml)

    def stopped(_config: FederationConfig, **_kwargs: object) -> None:
        _write_head(Path(config.server.state + ".ledger"), *BAD_HEADS[bad])
        ask_stop(signal.SIGTERM)  # as the command's SIGTERM handler does before it raises
        raise _Terminated(signal.SIGTERM)

    monkeypatch.setattr(secagg.runtime.launch, "serve", stopped)
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--init", "--quiet"])
    assert "Traceback" not in result.output
    assert result.exit_code == 143, result.output
    said = _said(result.stderr)
    assert len(said) == 1, result.stderr
    assert said[0].startswith("secagg server: stopped by SIGTERM: "), said
    assert "ledger head" not in said[0], said


#: what a ledger_head column may hold in a file that is not the writer's
_COLUMN = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=80),
    st.binary(max_size=40),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seq=_COLUMN, digest=_COLUMN)
def test_a_head_read_is_one_audit_verify_takes_or_none(
    tmp_path_factory: pytest.TempPathFactory, seq: Any, digest: Any
) -> None:
    """Whatever the head row holds, the read is None or a head whose token
    ``--expect-head`` parses back to itself; and the stop line's part built on it
    raises nothing."""
    path = tmp_path_factory.mktemp("head") / "state.sqlite.ledger"
    _write_head(path, seq, digest)
    head = _ledger_head(str(path))
    if head is not None:
        assert parse_head(format_head(*head)) == head
    said = _ledger_rows_said(str(path), None)
    assert head is not None or said == ""
