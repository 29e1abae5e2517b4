"""``secagg audit report`` after a review of run folders and the audit tools.

A ledger without DP got a guide that said the auditor "cannot prove the noise was
really drawn" (there was no noise); the per-round table of a distributed ledger did not
show how many noise shares each round summed (what its epsilon is charged at), so an
auditor had to read the raw rows; and auditing a DP-SGD ledger accounted with Opacus's
PRV let numpy print "divide by zero encountered in log" (its log(1 - q) at q = 1).
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.display import shown
from secagg.ledger import LedgerKey, export_public_key
from secagg.ledger.report import build_report
from secagg.ledger.verify import verify_ledger

DELTA, N = 1e-5, 20
NAMES = tuple(f"branch-{i:02d}" for i in range(N))


def _row(number: int, dp: dict[str, Any] | None, epsilon: float | None, **kw: Any) -> dict:
    return ledger_row(
        number, dp, epsilon, federation="review", participants=NAMES, **({"delta": DELTA} | kw)
    )


def _guide(text: str) -> str:
    return text.split("## How to read this", 1)[1]


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """The per-round table: its header cells and each row's cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = next(line for line in lines if line.startswith("| round |"))
    start = lines.index(header)
    body = []
    for line in lines[start + 1 :]:
        if not line.split("|")[1].strip().isdigit():
            break
        body.append(line)

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    return cells(header), [cells(line) for line in body]


# -- finding 2: the guide of a ledger without DP does not talk about noise ----------------


def _no_dp_rows() -> list[dict]:
    """``secagg simulate --mechanism off`` as it writes its ledger now: no DP block, no
    claim, ``noise_seeded`` false; one aborted round, two released."""
    return [
        _row(1, None, None, delta=None, status="aborted", contributed=0,
             dropouts={"advertise_keys": 1}, reason="round aborted: 2 clients answered"),
        _row(2, None, None, delta=None),
        _row(3, None, None, delta=None),
    ]  # fmt: skip


def test_the_guide_of_a_ledger_without_dp_says_no_epsilon_not_noise(tmp_path: Path) -> None:
    path, key = write_ledger(tmp_path / "off.sqlite", _no_dp_rows())
    text, png = build_report(path, key.public_key)
    assert png is None
    guide = _guide(text)
    assert "noise" not in guide.lower(), guide
    assert "released without differential privacy: no epsilon is claimed" in guide
    assert "secagg audit verify LEDGER --pubkey KEY" in guide  # still says how to re-check
    assert "ledger-report.png" not in text  # no plot drawn, none linked


def test_the_guide_of_a_dp_ledger_keeps_the_noise_caveat(tmp_path: Path) -> None:
    path, key = write_ledger(tmp_path / "ddg.sqlite", _distributed_rows([N, N]))
    guide = _guide(build_report(path, key.public_key)[0])
    assert "cannot prove the noise was really drawn (see docs/audit.md)" in guide
    assert "released without differential privacy" not in guide


# -- finding 3: the round table shows the noise shares each round summed ------------------


def _distributed_rows(contributors: list[int | None]) -> list[dict]:
    """Client-level distributed rows as the server writes them: each round's honest
    noise shares follow from its contributors (``None``: a round that aborted before
    it released, which carries no DP block and the previous claim)."""
    from secagg.dp.config import DPSettings
    from secagg.dp.release import mechanism_for

    mechanism = mechanism_for(
        DPSettings(mechanism="distributed", noise_multiplier=1.0, delta=DELTA),
        dimension=16,
        bits=32,
        sample_rate=1.0,
        expected_clients=float(N),
        corrupt_fraction=0.1,
        seed=b"s" * 16,
    )
    rows, epsilon = [], None
    for number, count in enumerate(contributors, start=1):
        if count is None:
            rows.append(_row(number, None, epsilon, status="aborted", contributed=0,
                             dropouts={"share_keys": N}, reason="1 clients answered"))  # fmt: skip
            continue
        mechanism.round_options(N)
        out = mechanism.release(np.zeros(16), contributors=count, participants=N, noise_added=0.0)
        dp = mechanism.ledger_block(out.store) | {
            "sampling": {"kind": "poisson", "rate": 1.0, "population": N, "seeded": False}
        }
        epsilon = out.epsilon
        rows.append(_row(number, dp, epsilon, contributed=count))
    return rows


def test_the_round_table_shows_each_rounds_noise_shares(tmp_path: Path) -> None:
    rows = _distributed_rows([N, N - 3, None, N])
    shares = [(row.get("dp") or {}).get("noise_contributors") for row in rows]
    assert shares[0] != shares[1] and shares[2] is None  # the rows differ: a real check
    path, key = write_ledger(tmp_path / "ddg.sqlite", rows)
    text, _ = build_report(path, key.public_key)
    assert "**VERIFIED**" in text
    header, body = _table(text)
    assert "noise shares" in header
    column = header.index("noise shares")
    assert [line[column] for line in body] == [
        "-" if count is None else str(count) for count in shares
    ]
    guide = _guide(text)
    assert "*noise shares*" in guide and "fewest" in guide


def test_a_central_ledgers_table_has_no_noise_shares_column(tmp_path: Path) -> None:
    """Only the distributed mechanism sums noise shares: a central ledger's table keeps
    its columns (a column of dashes would say nothing)."""
    from secagg.dp.accounting import PrivacyAccountant

    accountant = PrivacyAccountant(DELTA, "rdp")
    dp = {
        "unit": "client",
        "mechanism": "central",
        "clip": 1.0,
        "noise_multiplier": 2.0,
        "noise_std": 2.0,
        "sample_rate": 1.0,
        "accountant": "rdp",
        "delta": DELTA,
    }
    rows = []
    for number in (1, 2):
        accountant.step(2.0, 1.0)
        rows.append(_row(number, dp, accountant.epsilon(), publish_participants=True))
    path, key = write_ledger(tmp_path / "central.sqlite", rows)
    header, _ = _table(build_report(path, key.public_key)[0])
    assert "noise shares" not in header


# -- finding 4: no RuntimeWarning from Opacus escapes the audit of a DP-SGD ledger --------

#: the feature statistics' release (one step at q = 1), then DP-SGD: PRV's log(1 - q)
_HISTORY = ((1.0, 1.0, 1), (1.1, 0.02, 100))


def _prv_epsilon(history: list[tuple[float, float, int]]) -> float:
    """The branch's epsilon as it claimed it, and as the audit derived it before the
    change: Opacus's PRV accountant, its numpy warnings let through and dropped."""
    return _prv_epsilon_of(tuple(history))


@functools.lru_cache(maxsize=16)
def _prv_epsilon_of(history: tuple[tuple[float, float, int], ...]) -> float:
    """:func:`_prv_epsilon`, remembered: both PRV tests write the same ledger, and its
    four claims are a second of Opacus each (the audit's own figures are not cached)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RecordLevelAccountant("prv", DELTA, history).epsilon()


def _dpsgd_ledger(path: Path) -> tuple[Path, LedgerKey, dict[str, float]]:
    rows, epsilons = [], {}
    for number in (1, 2):
        reports = {}
        for identity, z in (("a" * 64, 1.1), ("b" * 64, 0.9)):
            history = [_HISTORY[0], (z, 0.02, 100 * number)]
            epsilons[identity] = _prv_epsilon(history)
            reports[identity] = {
                "accountant": "prv",
                "delta": DELTA,
                "history": [list(step) for step in history],
                "epsilon": epsilons[identity],
                "unit": "customer",
                "max_grad_norm": 1.0,
            }
        dp = {
            "unit": "record",
            "mechanism": "dpsgd",
            "clip": 5.0,
            "noise_multiplier": None,
            "noise_std": None,
            "sample_rate": 1.0,
            "accountant": "in-clients",
            "delta": DELTA,
            "client_reports": reports,
        }
        # every contributor reported (verify requires a report per contribution)
        rows.append(_row(number, dp, max(epsilons.values()), contributed=len(reports)))
    path, key = write_ledger(path, rows)
    return path, key, epsilons


def _runtime_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, RuntimeWarning)
    ]


def test_auditing_a_prv_dpsgd_ledger_lets_no_runtime_warning_out(tmp_path: Path) -> None:
    path, key, epsilons = _dpsgd_ledger(tmp_path / "dpsgd.sqlite")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # above pytest's and secagg.dp.dpsgd's filters
        result = verify_ledger(path, key.public_key)
        text, png = build_report(path, key.public_key)
    assert _runtime_warnings(caught) == []
    assert result.ok, result.first_failure
    assert png is not None
    # the same epsilons, to the last bit: only the warning is gone
    assert result.record_level == epsilons
    for identity, epsilon in epsilons.items():
        line = next(row for row in text.splitlines() if row.startswith(f"| `{identity[:12]}…`"))
        claimed, derived = [cell.strip() for cell in line.strip("|").split("|")][8:10]
        assert claimed == derived == shown(epsilon, 3)


def test_the_audit_cli_prints_no_runtime_warning_for_a_prv_ledger(tmp_path: Path) -> None:
    path, key, epsilons = _dpsgd_ledger(tmp_path / "dpsgd.sqlite")
    pem = export_public_key(key.public_key, tmp_path / "dpsgd.pub")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        verified = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem)])
        reported = CliRunner().invoke(
            main,
            ["audit", "report", str(path), "--pubkey", str(pem), "--out", str(tmp_path / "r")],
        )
    assert _runtime_warnings(caught) == []
    assert verified.exit_code == 0, verified.output
    assert f"cumulative epsilon {shown(max(epsilons.values()), 3)} at delta" in verified.output
    assert "RuntimeWarning" not in verified.output + reported.output
    assert reported.exit_code == 0, reported.output
