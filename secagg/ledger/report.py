"""``secagg audit report``: the ledger as a compliance officer reads it (markdown and HTML)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from pathlib import Path
from typing import Any

from secagg.ledger.verify import AuditResult, ExpectedPrivacy, verify_ledger


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return dt.datetime.fromtimestamp(float(value), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _eps(value: Any) -> str:
    if value is None:
        return "-"
    if value == "inf" or (isinstance(value, float) and math.isinf(value)):
        return "∞"
    return f"{float(value):.3f}"


def _plot(result: AuditResult) -> bytes | None:
    rows = [r.entry for r in result.chain.rows]
    points = [
        (e["round"], e["privacy"]["epsilon"])
        for e in rows
        if isinstance(e.get("privacy", {}).get("epsilon"), int | float)
    ]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot([p[0] for p in points], [p[1] for p in points], marker="o")
    top.set_ylabel("cumulative epsilon")
    top.set_title("Privacy budget spent")
    top.grid(alpha=0.3)
    rounds = [e["round"] for e in rows]
    bottom.bar(rounds, [e["contributed"] for e in rows], label="contributed")
    bottom.bar(
        rounds,
        [e["participants"]["count"] - e["contributed"] for e in rows],
        bottom=[e["contributed"] for e in rows],
        label="selected, dropped",
    )
    bottom.set_xlabel("round")
    bottom.set_ylabel("participants")
    bottom.legend()
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def build_report(
    path: str | Path, public_key: bytes | None = None, expected: ExpectedPrivacy | None = None
) -> tuple[str, bytes | None]:
    """The markdown text and the PNG of the budget and participation; ``expected``: the
    federation's config, which every DP row is then checked against."""
    result = verify_ledger(path, public_key, expected=expected)
    rows = [r.entry for r in result.chain.rows]
    status = (
        "**VERIFIED**: every row is linked, signed by the ledger key and its epsilon follows "
        "from the recorded mechanism."
        if result.ok
        else f"**FAILED**: {result.first_failure}. Rows before the failure are shown."
    )
    if result.ok and expected is not None:
        status += (
            f" {result.checked_against_config} DP rows match the federation config's delta, "
            "unit, mechanism and sampling."
        )
    if result.ok and result.seeded:
        rounds = ", ".join(str(number) for _, number in result.seeded)
        status += (
            f"\n\n**NOT PRIVATE**: the DP noise of round(s) {rounds} was seeded (a "
            "simulation/replay): whoever knows the seed can remove it, so their epsilon is "
            "not a privacy guarantee."
        )
    if result.ok and result.unnoised:
        rounds = ", ".join(str(number) for _, number in result.unnoised)
        status += (
            f"\n\n**NOT PRIVATE**: round(s) {rounds} completed without DP (no DP block): "
            "they released without noise, so epsilon is infinite from the first of them on."
        )
    for note in result.notes:
        status += f"\n\nNote: {note}."
    key = result.chain.public_key.hex()
    lines = [
        f"# Privacy ledger report: {Path(path).name}",
        "",
        status,
        "",
        f"- ledger public key (Ed25519): `{key}` ({result.chain.key_source})",
        "- head (keep it; `secagg audit verify --expect-head` it next time to detect a "
        f"rollback): `{result.chain.head or '-'}`",
        f"- rows: {len(rows)}; complete rounds: "
        f"{sum(e.get('status') == 'complete' for e in rows)}; aborted: "
        f"{sum(e.get('status') == 'aborted' for e in rows)}",
    ]
    if rows:
        last = rows[-1]
        dp = last.get("dp") or {}
        spent = last["privacy"]["epsilon"]
        budget = None if expected is None else expected.epsilon_budget
        if budget is None:
            cap = " (give `--config` to compare it with the federation's epsilon_budget)"
        elif spent is not None and not float(spent) <= budget * (1 + 1e-9):
            cap = f" of a budget of {budget:g}: **ABOVE THE BUDGET**"
        else:
            cap = f" of a budget of {budget:g}: within it"
        lines += [
            f"- privacy unit: {dp.get('unit', 'none')}; mechanism: "
            f"{dp.get('mechanism', 'none')}; accountant: {dp.get('accountant', '-')}",
            f"- budget spent: epsilon = {_eps(spent)} at delta = "
            f"{last['privacy'].get('delta')}{cap}",
            "",
            "## What each round released and what it cost",
            "",
            "| round | status | finished (UTC) | backend | selected | contributed | dropped "
            "per phase | clip | noise std | sample rate | cumulative ε | model digest |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for e in rows:
            dp = e.get("dp") or {}
            backend = e.get("backend", {})
            name = backend.get("name", "-")
            if "k" in backend:
                name += f" (k={backend['k']}, t={backend['t']}, {backend.get('bits')} bits)"
            drops = ", ".join(f"{k}: {v}" for k, v in e.get("dropouts", {}).items() if v) or "-"
            std = dp.get("noise_std")
            lines.append(
                f"| {e['round']} | {e['status']}{': ' + e['reason'] if e.get('reason') else ''} "
                f"| {_when(e.get('finished_at'))} | {name} | {e['participants']['count']} | "
                f"{e['contributed']} | {drops} | {dp.get('clip', '-')} | "
                f"{'-' if std is None else f'{std:.4g}'} | {dp.get('sample_rate', '-')} | "
                f"{_eps(e['privacy']['epsilon'])} | `{e['model_sha256'][:16]}…` |"
            )
    lines += [
        "",
        "## How to read this",
        "",
        "- *cumulative ε* is the privacy loss bound after that round, for the privacy unit "
        "above, re-derived by the verifier from the recorded noise, clip and sampling rate.",
        "- *dropped per phase* counts participants that stopped answering in that protocol "
        "phase; their data is not in that round's sum unless they dropped at unmasking.",
        "- Participants are listed in the ledger only as salted hashes; the operator holds "
        "the salt and can show which hash is which branch.",
        "- The ledger proves what was recorded and that nobody without the key changed it; it "
        "cannot prove the noise was really drawn (see docs/audit.md).",
        "",
        "![budget and participation](ledger-report.png)",
        "",
    ]
    return "\n".join(lines), _plot(result)


def write_report(
    path: str | Path,
    out_dir: str | Path,
    public_key: bytes | None = None,
    expected: ExpectedPrivacy | None = None,
) -> list[Path]:
    """Write ``ledger-report.md``, ``ledger-report.html`` and ``ledger-report.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text, png = build_report(path, public_key, expected)
    written = [out / "ledger-report.md"]
    written[0].write_text(text)
    if png is not None:
        (out / "ledger-report.png").write_bytes(png)
        written.append(out / "ledger-report.png")
    written.append(out / "ledger-report.html")
    written[-1].write_text(_html(text, png))
    return written


def _html(markdown: str, png: bytes | None) -> str:
    """A self-contained HTML page (the plot inlined) from the report's simple markdown."""
    body: list[str] = []
    table: list[list[str]] = []

    def flush_table() -> None:
        if not table:
            return
        head, *rest = table
        body.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
        body.extend("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rest)
        body.append("</table>")
        table.clear()

    def inline(text: str) -> str:
        out = html.escape(text)
        parts = out.split("**")
        out = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
        parts = out.split("`")
        return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                table.append([inline(c) for c in cells])
            continue
        flush_table()
        if line.startswith("# "):
            body.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{inline(line[2:])}</li>")
        elif line.startswith("![") and png is not None:
            data = base64.b64encode(png).decode()
            body.append(f'<img alt="budget and participation" src="data:image/png;base64,{data}">')
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush_table()
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #999;"
        "padding:3px 6px}code{font-size:90%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Privacy ledger report</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
