"""The writer's read-back of its rows (``Ledger.entries``, ``committed_entries``) refuses
a row no writer could have written, naming it, with a typed one-line error.

Why: both returned whatever JSON each row held, and their readers took every entry for
a row of the server's: a signed row that was a list, a number or a string, or an object
whose ``dp`` was a list or that had no round number, reached the server's start as an
``AttributeError`` (``entry.get``, ``(entry.get("dp") or {}).get(...)``) or was skipped
in its state-against-ledger check. ``audit verify`` fails such a row
(:func:`~secagg.ledger.entry.row_shape_problem`); the writer now reads its rows by the
same rule, so it never takes up a ledger the auditor fails for its rows' shape.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _ledgers import central_client_rows

from secagg.ledger import Ledger, LedgerError, LedgerKey
from secagg.ledger.chain import canonical

Z, DELTA = 1.5, 1e-5
GOOD = central_client_rows([("a", "b"), ("a", "c"), ("a", "b")], Z, DELTA)[0]
KEY = LedgerKey.generate()


def _written(path: Path, rows: list[Any]) -> Ledger:
    """A ledger holding ``rows`` as given (any JSON), signed with :data:`KEY`, open."""
    ledger = Ledger(path, KEY)
    for row in rows:
        ledger.append(row)
    return ledger


def _second_row(value: Any = None, *, drop: str | None = None, **changes: Any) -> list[Any]:
    rows = copy.deepcopy(GOOD)
    if value is not None:
        rows[1] = value
        return rows
    if drop is not None:
        del rows[1][drop]
    rows[1].update(changes)
    return rows


MALFORMED: dict[str, tuple[list[Any], str]] = {
    "a number": (_second_row(7), "row 2 is not a JSON object but int 7"),
    "a list": (_second_row([1, 2]), "row 2 is not a JSON object but list"),
    "a string": (_second_row("text"), "row 2 is not a JSON object but str"),
    "null": ([GOOD[0], None, GOOD[2]], "row 2 is not a JSON object but NoneType"),
    "no round": (_second_row(drop="round"), "row 2: round must be a round number"),
    "no status": (_second_row(drop="status"), "row 2: status must be 'complete' or 'aborted'"),
    "dp a list": (_second_row(dp=[1]), "row 2: dp must be a JSON object or null"),
    "round repeated": (_second_row(round=1), "row 2: round 1 repeats round 1"),
    "no version": (_second_row(drop="version"), "row 2: version must be a row version"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("reader", ["entries", "committed_entries"])
def test_a_malformed_row_is_refused_naming_it(tmp_path: Path, case: str, reader: str) -> None:
    rows, said = MALFORMED[case]
    ledger = _written(tmp_path / "l.ledger", rows)
    try:
        with pytest.raises(LedgerError) as refused:
            getattr(ledger, reader)()
    finally:
        ledger.close()
    message = str(refused.value)
    assert said in message, message
    assert message.startswith(f"the ledger {ledger.path}: ")
    assert "\n" not in message


@pytest.mark.parametrize("reader", ["entries", "committed_entries"])
def test_the_rows_a_server_writes_read_back_as_written(tmp_path: Path, reader: str) -> None:
    ledger = _written(tmp_path / "l.ledger", GOOD)
    try:
        read = getattr(ledger, reader)()
    finally:
        ledger.close()
    assert read == [json.loads(canonical(row)) for row in GOOD]


def test_an_empty_ledger_reads_as_no_rows(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.ledger", KEY)
    try:
        assert ledger.entries() == [] and ledger.committed_entries() == []
    finally:
        ledger.close()


def test_a_server_started_on_such_a_ledger_refuses_it_in_one_line(tmp_path: Path) -> None:
    """The server's start reads the rows back (``Ledger.entries``): a signed row whose
    ``dp`` is a list ended it in ``AttributeError: 'list' object has no attribute
    'get'``; it is now the ledger's one-line refusal naming the row."""
    from _ledgered_federation import ledger_path, ledgered_config

    from secagg.runtime.server import FederationServer
    from secagg.runtime.store import ServerStore
    from secagg.transport.inprocess import InProcessHub

    config = ledgered_config(tmp_path, rounds=2)
    ledger = _written(ledger_path(config), [GOOD[0] | {"dp": [1]}])
    store = ServerStore(config.server.state)
    try:
        with pytest.raises(
            LedgerError, match=r"row 1: dp must be a JSON object or null"
        ) as refused:
            FederationServer(config, InProcessHub(), store, ledger=ledger)
        assert "\n" not in str(refused.value)
    finally:
        store.close()
        ledger.close()
