"""docs/deployment.md describes ``secagg server``'s stop line where the ledger's head
could not be read as the start began, and its example is the line the server prints.

Helper brief 323 (2026-12-07): commit ddc78923 made that stop line say "this start could
not tell which ledger rows it wrote ..." (tests/apps/test_server_stop_head_not_read.py),
but the guide's paragraph on the stop line described only the line that names the
rounds, so an operator who met the other read it as undocumented.
"""

from __future__ import annotations

import re
from pathlib import Path

from _ledgers import ledger_row, write_ledger

from secagg.apps.commands.server import HEAD_UNREAD, _ledger_rows_said

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
PHRASE = "could not tell which ledger rows it wrote"
#: a head as the line gives it, for the guide's shortened one (``3:8b83…``)
HEAD = r"\d+:[0-9a-f]{64}"


def _guide_example() -> str:
    """The guide's quoted stop line (a `...` span) that says the head was not read."""
    text = " ".join(GUIDE.read_text(encoding="utf-8").split())
    quoted = [span for span in re.findall(r"`([^`]*)`", text) if PHRASE in span]
    assert len(quoted) == 1, f"docs/deployment.md quotes no stop line with {PHRASE!r}"
    return quoted[0]


def test_the_guide_quotes_the_stop_line_of_a_head_not_read_as_the_server_prints_it(
    tmp_path: Path,
) -> None:
    """Before: no such quote (the guide named only "this start wrote the ledger's row of
    rounds ..."). Now: its example, ``...`` and a head ``3:8b83…`` standing for what
    varies, matches
    the line :func:`_ledger_rows_said` gives a start whose head read failed."""
    path, _ = write_ledger(
        tmp_path / "fed.sqlite.ledger", [ledger_row(n, None, None) for n in (1, 2, 3)]
    )
    said = _ledger_rows_said(str(path), HEAD_UNREAD)
    example = _guide_example()
    pattern = "".join(
        ".*" if piece == "..." else HEAD if piece.endswith("…") else re.escape(piece)
        for piece in re.split(r"(\.\.\.|\d+:[0-9a-f]*…)", example)
    )
    assert re.fullmatch(pattern, said), (example, said)
    assert "ledger head 3:" in said and "round" not in said.split("(")[0], said


def test_the_guide_says_it_where_it_describes_the_stop_line() -> None:
    """In the paragraph of the stop line (beside ``--expect-head``'s token), not elsewhere."""
    paragraphs = GUIDE.read_text(encoding="utf-8").split("\n\n")
    (stop,) = [p for p in paragraphs if "this start wrote the ledger's" in p]
    assert PHRASE in " ".join(stop.split()), stop
