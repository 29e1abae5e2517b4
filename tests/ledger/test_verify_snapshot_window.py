"""``verify_ledger`` holds its read snapshot of a live ledger for the chain's read only,
not through the epsilon replay.

Why: a reader's snapshot keeps the writer's WAL checkpoint from truncating the log, so
the WAL grows by every append made while it is held (docs/audit.md, point 8). The chain
check needs one snapshot (head and rows must agree); the replay, the slow part with the
accountants, works on the rows already read, so a writer appending during it must find
no reader: its checkpoint empties the WAL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _ledgers import central_client_rows, ledger_row, write_ledger

from secagg.ledger import Ledger
from secagg.ledger import verify as audit


def _wal_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_an_append_during_the_replay_finds_no_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, epsilon = central_client_rows([("a", "b"), ("a", "c")], 1.5, 1e-5)
    path, key = write_ledger(tmp_path / "live.ledger", rows)
    writer = Ledger(path, key)  # the live server's connection
    wal_after_append: list[int] = []
    feed = audit.EpsilonReplay.feed

    def feed_and_append(self: Any, entry: dict[str, Any], **options: Any) -> Any:
        if not wal_after_append:  # the first row replayed: the chain has been read
            aborted = ledger_row(
                3, None, epsilon, status="aborted", reason="too few", contributed=0
            )
            writer.append(aborted)
            wal_after_append.append(_wal_size(path))
        return feed(self, entry, **options)

    monkeypatch.setattr(audit.EpsilonReplay, "feed", feed_and_append)
    try:
        result = audit.verify_ledger(path, key.public_key)
    finally:
        writer.close()
    assert result.ok, result.first_failure
    assert len(result.chain.rows) == 2  # the snapshot read before the append
    assert wal_after_append == [0]  # the append's checkpoint met no reader
