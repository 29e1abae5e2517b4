"""``--prior-ledger`` as a reviewer read verify's and the report's output (2026-12-05).

Every figure beside a prior ledger must say which rows it covers: the config count
counted the prior's rows next to "3 rows (after the prior ledger's 3)"; the report's
rows line and plot covered this file only, with a note further up the only sign the
epsilon covers more; ``--first-round N`` with a prior ledger did not say rounds before
N are in neither file; an epsilon whose delta the prior's last row does not record
printed as if complete; and a head kept from the prior ledger, checked against a
ledger begun afresh, failed as "rewritten and re-signed".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledgers import central_client_rows, ledger_row, write_central_config, write_ledger
from click.testing import CliRunner

from secagg.apps.audit.cli import _expected
from secagg.apps.cli import main
from secagg.ledger import LedgerKey, export_public_key
from secagg.ledger.report import _figure, build_report
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b"), ("c", "d"), ("a", "d")]
SPLIT = 3


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _pub(tmp_path: Path, key: LedgerKey) -> str:
    return str(export_public_key(key.public_key, tmp_path / "ledger.pub"))


def _afresh(tmp_path: Path) -> tuple[Path, Path, LedgerKey, float]:
    """Rounds 1-3 in one ledger, 4-6 in a second begun at its genesis (same key)."""
    rows, epsilon = central_client_rows(COHORTS, Z, DELTA)
    prior, key = write_ledger(tmp_path / "rounds-1-3.ledger", rows[:SPLIT])
    tail, _ = write_ledger(tmp_path / "rounds-4-6.ledger", rows[SPLIT:], key)
    return prior, tail, key, epsilon


def _config(tmp_path: Path) -> Path:
    return write_central_config(
        tmp_path / "f.toml", name="test", clients=["a", "b", "c", "d"], rate=0.5, z=Z, delta=DELTA
    )


def test_the_config_count_says_which_rows_it_covers(tmp_path: Path) -> None:
    """6 rows were checked (3 here, 3 in the prior): the line read "6 DP rows match"
    beside "3 rows (after the prior ledger's 3)"."""
    prior, tail, key, _ = _afresh(tmp_path)
    config = str(_config(tmp_path))
    args = ["audit", "verify", str(tail), "--pubkey", _pub(tmp_path, key)]
    args += ["--prior-ledger", str(prior), "--config", config]
    status, out, err = _cli(*args)
    assert status == 0, err
    line = next(x for x in out.splitlines() if x.startswith(f"config {config}:"))
    assert "6 DP rows (3 of this file, 3 of the prior ledger) match" in line
    status, out, _ = _cli(*args, "--json")
    payload = json.loads(out)
    assert payload["rows"] == 3 and payload["rows_checked_against_config"] == 6
    assert payload["rows_checked_against_config_prior_ledger"] == 3
    assert payload["rows_without_sampling_prior_ledger"] == 0
    text, _ = build_report(tail, key.public_key, _expected(config), prior_ledger=prior)
    assert "6 DP rows (3 of this file, 3 of the prior ledger) match" in text
    # without a prior ledger the line is as it was
    alone, alone_key = write_ledger(
        tmp_path / "all.ledger", central_client_rows(COHORTS, Z, DELTA)[0]
    )
    status, out, _ = _cli(
        "audit", "verify", str(alone), "--pubkey", _pub(tmp_path, alone_key), "--config", config
    )
    assert status == 0 and f"config {config}: 6 DP rows match its delta" in out


def test_the_report_says_how_many_rounds_the_epsilon_covers_and_where(tmp_path: Path) -> None:
    """ "rows: 3", this file's table and a plot starting at round 4 were all the report
    said; the epsilon covers six rounds, three of them in the prior ledger."""
    prior, tail, key, epsilon = _afresh(tmp_path)
    text, _ = build_report(tail, key.public_key, prior_ledger=prior)
    rows_line = next(x for x in text.splitlines() if x.startswith("- rows: 3;"))
    assert f"rounds 1-3 (3 rows) of the prior ledger {prior}" in rows_line
    assert "counted in every epsilon" in rows_line
    spent = next(x for x in text.splitlines() if x.startswith("- budget spent"))
    assert (
        f"(of 6 rows: 3 of this ledger after rounds 1-3 (3 rows) of the prior ledger {prior})"
        in spent
    )
    result = verify_ledger(tail, key.public_key, prior_ledger=prior)
    figure = _figure(result)
    assert figure is not None
    curve = next(line for line in figure.axes[0].lines if "cumulative" in line.get_label())
    xs, ys = list(curve.get_xdata()), list(curve.get_ydata())
    # the curve starts from the prior ledger's spend at its last round, not at round 4
    assert xs[0] == SPLIT and ys[0] == pytest.approx(result.prior_epsilon)
    assert ys[0] > 0 and xs[-1] == len(COHORTS) and ys[-1] == pytest.approx(epsilon, rel=1e-9)
    assert "prior ledger's included" in curve.get_label()
    # a ledger without a prior keeps its curve and rows line
    alone, alone_key = write_ledger(
        tmp_path / "all.ledger", central_client_rows(COHORTS, Z, DELTA)[0]
    )
    text, _ = build_report(alone, alone_key.public_key)
    assert "prior ledger" not in text


def _shifted(rows: list[dict], by: int) -> list[dict]:
    return [r | {"round": r["round"] + by, "model_sha256": f"{r['round'] + by:064x}"} for r in rows]


def test_first_round_with_a_prior_ledger_says_the_rounds_before_are_excluded(
    tmp_path: Path,
) -> None:
    """Round 1 is in neither file (--first-round 2, a prior of rounds 2-3): a tail
    claiming the epsilon of rounds 1-4 failed naming the prior's replay only."""
    prior_rows = _shifted(central_client_rows(COHORTS[1:SPLIT], Z, DELTA)[0], 1)  # rounds 2-3
    tail_rows = central_client_rows(COHORTS, Z, DELTA)[0][SPLIT:]  # claims count round 1
    prior, key = write_ledger(tmp_path / "rounds-2-3.ledger", prior_rows)
    tail, _ = write_ledger(tmp_path / "rounds-4-6.ledger", tail_rows, key)
    result = verify_ledger(tail, key.public_key, first_round=2, prior_ledger=prior)
    failure = str(result.first_failure)
    assert not result.ok and "row 1 (round 4)" in failure
    assert f"rounds 2 to 3 replayed from the prior ledger {prior}" in failure
    assert "round 1 excluded (--first-round 2): in neither ledger" in failure
    # a prior whose own rows count round 1 fails at its first row, saying the same
    counted, key2 = write_ledger(
        tmp_path / "counted.ledger", central_client_rows(COHORTS, Z, DELTA)[0][1:SPLIT]
    )
    tail2, _ = write_ledger(tmp_path / "tail2.ledger", tail_rows, key2)
    result = verify_ledger(tail2, key2.public_key, first_round=2, prior_ledger=counted)
    failure = str(result.first_failure)
    assert not result.ok and "of the prior ledger" in failure
    assert "round 1 excluded (--first-round 2): in neither ledger" in failure


def test_an_epsilon_is_stated_at_the_prior_ledgers_accounted_delta(tmp_path: Path) -> None:
    """The prior's last row (an aborted round without a DP block) records no delta: a
    ledger begun afresh printed "cumulative epsilon 4.090" as if that were complete,
    and the report "at delta = -". The epsilon holds at the delta the prior's last DP
    block accounts at, which both now state (test_verify_claim_delta)."""
    rows, epsilon = central_client_rows(COHORTS[:SPLIT], Z, DELTA)
    aborted = ledger_row(
        SPLIT + 1, None, epsilon, delta=None, status="aborted", reason="too few",
        participants=("a", "b"), contributed=0,
    )  # fmt: skip
    prior, key = write_ledger(tmp_path / "prior.ledger", [*rows, aborted])
    empty, _ = write_ledger(tmp_path / "new.ledger", [], key)
    pub = _pub(tmp_path, key)
    status, out, err = _cli(
        "audit", "verify", str(empty), "--pubkey", pub, "--prior-ledger", str(prior)
    )
    assert status == 0, err
    first = out.splitlines()[0]
    assert first.endswith(f"cumulative epsilon 4.090 at delta {DELTA:g}"), first
    text, _ = build_report(empty, key.public_key, prior_ledger=prior)
    spent = next(x for x in text.splitlines() if x.startswith("- budget spent"))
    assert "at delta = -" not in spent
    assert f"at delta = {DELTA:g}" in spent
    # with the delta recorded the line is as it was
    prior2, key2 = write_ledger(tmp_path / "prior2.ledger", rows)
    empty2, _ = write_ledger(tmp_path / "new2.ledger", [], key2)
    status, out, _ = _cli(
        "audit",
        "verify",
        str(empty2),
        "--pubkey",
        _pub(tmp_path, key2),
        "--prior-ledger",
        str(prior2),
    )
    assert status == 0 and out.splitlines()[0].endswith("at delta 1e-05")


def test_a_head_kept_from_the_prior_ledger_is_found_in_it(tmp_path: Path) -> None:
    """The prior was the live ledger when the auditor kept its head after round 2; the
    federation then began afresh. It failed "rewritten and re-signed with the ledger
    key"; the head is in the prior ledger, and 1 + 3 rows were appended since."""
    prior, tail, key, _ = _afresh(tmp_path)
    kept = verify_ledger(prior, key.public_key).chain.rows[1]
    head = f"2:{kept.hash}"
    result = verify_ledger(tail, key.public_key, head, prior_ledger=prior)
    assert result.ok, result.first_failure
    assert result.anchor is not None and result.anchor.grown_by == len(COHORTS) - 2
    status, out, err = _cli(
        "audit", "verify", str(tail), "--pubkey", _pub(tmp_path, key),
        "--prior-ledger", str(prior), "--expect-head", head,
    )  # fmt: skip
    assert status == 0, err
    assert f"expected head {head} is in the ledger; 4 rows appended since" in out
    # a head in neither file still fails, saying it is in neither
    other = verify_ledger(tail, key.public_key, f"2:{'0' * 64}", prior_ledger=prior)
    failure = str(other.first_failure)
    assert not other.ok and "is not the head you expected" in failure
    assert f"nor is it in the prior ledger {prior}" in failure


def test_the_noise_seeded_note_says_which_rows_it_counts(tmp_path: Path) -> None:
    """The prior ledger's rows 1-3 predate the noise_seeded field (this file's do not):
    the note read "3 rows predate the noise_seeded field" beside "3 rows (after the
    prior ledger's 3)", as if this file's rows were the old ones."""
    rows, _ = central_client_rows(COHORTS, Z, DELTA)
    old = [{k: v for k, v in row.items() if k != "noise_seeded"} for row in rows[:SPLIT]]
    prior, key = write_ledger(tmp_path / "rounds-1-3.ledger", old)
    tail, _ = write_ledger(tmp_path / "rounds-4-6.ledger", rows[SPLIT:], key)
    args = ["audit", "verify", str(tail), "--pubkey", _pub(tmp_path, key)]
    args += ["--prior-ledger", str(prior)]
    status, out, err = _cli(*args)
    assert status == 0, err
    assert "note: 3 rows (0 of this file, 3 of the prior ledger) predate the noise_seeded" in out
    payload = json.loads(_cli(*args, "--json")[1])
    assert payload["rows_without_noise_seeded"] == 3
    assert payload["rows_without_noise_seeded_prior_ledger"] == 3
