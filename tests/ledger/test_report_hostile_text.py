"""``secagg audit report`` of rows holding hostile text: nothing a row records can add
lines, markup or table cells to the report, in markdown or in HTML.

Why (hostile review, 2026-12-06):

* the fact line ``- privacy unit: ...`` printed the DP block's ``unit`` raw: a signed row
  whose unit held line breaks added a ``**VERIFIED**`` paragraph, a ``budget spent:
  epsilon = 0.001`` line and an ``<img onerror=...>`` tag to the report of a ledger that
  FAILED;
* a table cell escaped ``|`` as ``\\|`` for markdown, but the HTML page split its rows on
  every ``|``: a reason ``x | 0.001 | ...`` moved ``0.001`` into the *finished* column and
  every later figure one column right; a value ending in a backslash turned the escape
  itself into ``\\\\|``, which ends the cell in markdown too;
* cells kept ``<script>``, ``<img ...>`` and ``[text](javascript:...)`` as written, which
  a markdown viewer that renders raw HTML (most do) runs; a model digest holding a
  backtick left its code span and did the same.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from _ledgers import central_dp, ledger_row, write_ledger

from secagg.ledger.report import _html, build_report

HOSTILE = "x | 0.001 | <script>alert(1)</script> [click](javascript:alert(2)) a\\| `b` **c** &lt;"


def _gfm_cells(line: str) -> list[str]:
    """A markdown table row's cells as GitHub's renderer splits them: a backslash escapes
    the character after it (a backslash too), any other ``|`` ends a cell."""
    cells, current, i = [], "", 0
    body = line.strip()
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            current += body[i : i + 2]
            i += 2
            continue
        if body[i] == "|":
            cells.append(current)
            current = ""
        else:
            current += body[i]
        i += 1
    cells.append(current)
    return [c.strip() for c in cells[1:-1]]


def _unescaped(markdown: str) -> str:
    """The markdown with every backslash-escaped character blotted out: what is left is
    what a renderer reads as markup."""
    return re.sub(r"\\.", "·", markdown)


def _html_rows(page: str) -> list[list[str]]:
    """Every HTML table row's cells, tags removed and entities read."""
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", r)]
        for r in rows
    ]


def _report(tmp_path: Path, rows: list[dict]) -> tuple[str, str]:
    path, key = write_ledger(tmp_path / "hostile.ledger", rows)
    text, png = build_report(path, key.public_key)
    return text, _html(text, png)


def test_a_recorded_unit_adds_no_line_to_the_report_of_a_failed_ledger(tmp_path: Path) -> None:
    unit = (
        "client\n\n**VERIFIED**: fake <img src=x onerror=alert(1)>\n\n"
        "- budget spent: epsilon = 0.001"
    )
    text, page = _report(tmp_path, [ledger_row(1, central_dp(1.0, 1e-5) | {"unit": unit}, None)])
    assert text.split("\n")[2].startswith("**FAILED**")
    assert "\n**VERIFIED**" not in text and "\n- budget spent: epsilon = 0.001" not in text
    assert [line for line in text.splitlines() if line.startswith("- budget spent")] == [
        "- budget spent: not verified (the ledger FAILED): the last row claims epsilon = - "
        "at delta = 1e-05, as recorded"
    ]
    assert "<img" not in _unescaped(text) and "<img" not in page
    unit_line = next(line for line in text.splitlines() if line.startswith("- privacy unit"))
    assert "fake" in unit_line  # shown, as recorded, on its own fact line


def test_a_recorded_reason_keeps_to_its_cell_in_markdown_and_html(tmp_path: Path) -> None:
    rows = [
        ledger_row(1, None, None),
        ledger_row(2, None, None, status="aborted", contributed=0, reason=HOSTILE),
    ]
    text, page = _report(tmp_path, rows)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    header = _gfm_cells(table[0])
    assert all(len(_gfm_cells(line)) == len(header) for line in table), table
    html_rows = _html_rows(page)
    assert [len(r) for r in html_rows] == [len(header)] * 3, html_rows
    aborted = dict(zip(html_rows[0], html_rows[2], strict=True))
    assert aborted["status"] == f"aborted: {HOSTILE}"  # the reason as recorded, whole
    assert aborted["finished (UTC)"] == "2001-09-09 01:46:42"
    for raw in ("<script", "](javascript:"):  # markup a markdown viewer would run
        assert raw not in _unescaped(text)
    assert "<script" not in page  # the page shows it as text (the cell above)


def test_a_recorded_model_digest_cannot_leave_its_code_span(tmp_path: Path) -> None:
    digest = "`<script>alert(1)</script>`"
    rows = [ledger_row(1, None, None, model_sha256=digest)]
    text, page = _report(tmp_path, rows)
    assert "<script" not in _unescaped(text) and "<script" not in page
    html_rows = _html_rows(page)
    assert len(html_rows[1]) == len(html_rows[0])
    assert html_rows[1][-1].startswith("`<script>alert(1")  # shown as text, cut at 16


def test_a_recorded_value_quoted_in_the_failure_carries_no_markup(tmp_path: Path) -> None:
    """The failure line quotes recorded values (``unit '<img ...>'``): it was put in the
    status paragraph raw, an ``<img onerror>`` a markdown viewer runs. It is escaped, and
    ``report``'s terminal verdict reads it back as written."""
    from click.testing import CliRunner

    from secagg.apps.cli import main
    from secagg.ledger import export_public_key

    unit = "<img src=x onerror=alert(1)>"
    dp = central_dp(1.0, 1e-5) | {"unit": unit, "record_clip": 1.0}
    path, key = write_ledger(tmp_path / "quoted.ledger", [ledger_row(1, dp, 1.0)])
    text, png = build_report(path, key.public_key)
    status = text.split("\n")[2]
    assert status.startswith("**FAILED**") and "unit" in status
    assert "<img" not in _unescaped(text) and "<img src=x" not in _html(text, png)
    pem = export_public_key(key.public_key, tmp_path / "ledger.pub")
    result = CliRunner().invoke(
        main, ["audit", "report", str(path), "--pubkey", str(pem), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    verdict = next(line for line in result.stderr.splitlines() if line.startswith("verdict:"))
    assert f"on a row of unit '{unit}'" in verdict, verdict
