"""``secagg audit report`` for its readers (newcomer review section 8).

A record-level ledger shows each branch's DP-SGD accounting, not the update clip with
"noise std -" and "sample rate 1.0"; "How to read this" matches the table of the
ledger's mechanism; the participation plot does not call a round aborted for too few
sampled clients "selected, dropped"; the epsilon axis starts at 0, the budget is a
line and no legend covers the data; without a public key the report is UNVERIFIED.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from _ledgers import ledger_row

from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.accounting import PrivacyAccountant
from secagg.dp.display import shown
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.report import _figure, build_report, participation, write_report
from secagg.ledger.verify import ExpectedPrivacy, verify_ledger

DELTA = 1e-5


def _entry(number: int, dp: dict[str, Any] | None, epsilon: float | None, **kw: Any) -> dict:
    return ledger_row(number, dp, epsilon, federation="report", **({"delta": DELTA} | kw))


def _branch(history: list[tuple[float, float, int]], unit: str, clip: float) -> dict:
    """A branch's DP-SGD report as DPSGDTrainer.privacy_report writes it."""
    epsilon = RecordLevelAccountant("rdp", DELTA, history).epsilon()
    return {
        "accountant": "rdp",
        "delta": DELTA,
        "history": [list(step) for step in history],
        "epsilon": epsilon,
        "unit": unit,
        "max_grad_norm": clip,
    }


def _record_ledger(path: Path) -> tuple[Path, LedgerKey, dict[str, dict]]:
    key = LedgerKey.generate()
    ledger = Ledger(path, key)
    reports: dict[str, dict] = {}
    for number in (1, 2):
        reports = {
            "a" * 64: _branch([(1.1, 0.02, 100 * number)], "customer", 1.5),
            "b" * 64: _branch([(0.9, 0.05, 40 * number)], "customer", 0.8),
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
            "adjacency": "add/remove one customer (all their rows) of a branch",
            "client_reports": reports,
        }
        worst = max(r["epsilon"] for r in reports.values())
        # every contributor reported (verify requires a report per contribution)
        ledger.append(_entry(number, dp, worst, contributed=len(reports)))
    ledger.close()
    return path, key, reports


def _central_ledger(path: Path, *, with_aborts: bool = False) -> tuple[Path, LedgerKey, float]:
    key = LedgerKey.generate()
    ledger = Ledger(path, key)
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
        "adjacency": "add/remove one client",
    }
    for number in (1, 2, 3):
        accountant.step(2.0, 1.0)
        ledger.append(_entry(number, dp, accountant.epsilon(), publish_participants=True))
    if with_aborts:  # one sampled client: the round never ran; then a round that died
        held = f"{3:064x}"  # neither released anything: the model stays round 3's
        ledger.append(
            _entry(4, None, accountant.epsilon(), status="aborted", participants=("a",),
                   contributed=0, reason="fewer than 2 clients sampled or connected",
                   model_sha256=held)
        )  # fmt: skip
        ledger.append(
            _entry(5, None, accountant.epsilon(), status="aborted", contributed=0,
                   dropouts={"share_keys": 2}, reason="1 clients answered in share_keys",
                   model_sha256=held)
        )  # fmt: skip
    ledger.close()
    return path, key, accountant.epsilon()


def test_record_level_report_shows_each_branchs_dp_sgd_accounting(tmp_path: Path) -> None:
    path, key, reports = _record_ledger(tmp_path / "record.sqlite")
    text, png = build_report(path, key.public_key)
    assert png is not None
    assert "**VERIFIED**" in text
    assert "## Each branch's DP-SGD accounting" in text
    assert "mechanism: DP-SGD in each branch; accountant: each branch's own (rdp)" in text
    lines = text.splitlines()
    branch_a = next(line for line in lines if line.startswith(f"| `{'a' * 12}…`"))
    cells = [cell.strip() for cell in branch_a.strip("|").split("|")]
    recomputed = verify_ledger(path, key.public_key).record_level["a" * 64]
    assert cells[1:] == [
        "customer",
        "rdp",
        "1e-05",
        "1.1",
        "0.02",
        "200",
        "1.5",
        shown(reports["a" * 64]["epsilon"], 3),
        shown(recomputed, 3),
        "round 2",
    ]
    # the per-round table no longer shows the update clip as if it were a DP parameter
    header = next(line for line in lines if line.startswith("| round |"))
    assert "noise std" not in header and "sample rate" not in header and "| clip |" not in header
    assert "branches reporting" in header and "worst branch" in header
    assert "noise std -" not in text
    guide = text.split("## How to read this", 1)[1]
    assert "DP-SGD" in guide and "worst branch" in guide
    assert "re-derived by the verifier from the recorded noise, clip" not in guide


def test_central_report_reads_as_its_table(tmp_path: Path) -> None:
    path, key, _ = _central_ledger(tmp_path / "central.sqlite")
    text, _ = build_report(path, key.public_key)
    header = next(line for line in text.splitlines() if line.startswith("| round |"))
    assert "| clip | noise std | sample rate | cumulative ε |" in header
    guide = text.split("## How to read this", 1)[1]
    assert "noise multiplier" in guide and "DP-SGD" not in guide
    assert "secagg audit verify LEDGER --pubkey KEY" in guide


def test_without_a_public_key_the_report_is_unverified(tmp_path: Path) -> None:
    path, _key, _ = _central_ledger(tmp_path / "central.sqlite")
    text, _ = build_report(path)
    assert "**UNVERIFIED** (no `--pubkey`)" in text and "**VERIFIED**" not in text


def test_participation_labels_are_honest(tmp_path: Path) -> None:
    path, key, eps = _central_ledger(tmp_path / "aborts.sqlite", with_aborts=True)
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    entries = [row.entry for row in result.chain.rows]
    assert participation(entries[0])["contributed"] == 3
    assert participation(entries[3]) == {"contributed": 0, "dropped": 0, "aborted": 0, "not_run": 1}
    assert participation(entries[4])["aborted"] == 3  # started, then died: not "dropped"
    text, _ = build_report(path, key.public_key)
    assert "aborted: 2 (1 before they ran: too few sampled or connected)" in text
    fig = _figure(result, budget=2 * eps)
    try:
        labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
        assert "selected, dropped" not in labels
        assert any("aborted before it ran" in label for label in labels)
        assert not any("dropped out" in label for label in labels)  # nobody did here
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


@pytest.mark.parametrize("budget", [None, 4.0])
def test_plot_axis_starts_at_zero_budget_line_and_legends_beside_the_data(
    tmp_path: Path, budget: float | None
) -> None:
    import matplotlib.pyplot as plt

    path, key, _ = _central_ledger(tmp_path / "central.sqlite", with_aborts=True)
    fig = _figure(verify_ledger(path, key.public_key), budget=budget)
    try:
        top, bottom = fig.axes
        assert top.get_ylim()[0] == 0
        budget_lines = [line for line in top.get_lines() if line.get_linestyle() == "--"]
        if budget is None:
            assert budget_lines == []
        else:
            assert [line.get_ydata()[0] for line in budget_lines] == [budget]
            assert top.get_ylim()[1] >= budget
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        for axes in (top, bottom):
            legend = axes.get_legend().get_window_extent(renderer)
            assert not legend.overlaps(axes.get_window_extent(renderer))
    finally:
        plt.close(fig)


def test_the_report_draws_and_states_the_configs_budget(tmp_path: Path) -> None:
    path, key, eps = _central_ledger(tmp_path / "central.sqlite")
    expected = ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=1.0,
        population=3,
        epsilon_budget=2 * eps,
    )
    text, png = build_report(path, key.public_key, expected)
    assert f"of a budget of {2 * eps:g}: within it" in text
    assert png is not None and png.startswith(b"\x89PNG")


def test_a_config_without_a_budget_is_not_asked_for_again(tmp_path: Path) -> None:
    """``--config`` given, its ``[dp]`` without ``epsilon_budget``: the budget line said
    "(give `--config` to compare it with the federation's epsilon_budget)", telling the
    auditor to pass the flag they had passed; it says the config sets no budget."""
    path, key, _ = _central_ledger(tmp_path / "central.sqlite")
    expected = ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=1.0,
        population=3,
        epsilon_budget=None,
    )
    line = next(s for s in build_report(path, key.public_key, expected)[0].splitlines()
                if s.startswith("- budget spent"))  # fmt: skip
    assert "give `--config`" not in line
    assert "the config sets no epsilon_budget" in line
    alone = next(s for s in build_report(path, key.public_key)[0].splitlines()
                 if s.startswith("- budget spent"))  # fmt: skip
    assert "give `--config` to compare it" in alone  # without one it still says how


def _no_dp_ledger(path: Path) -> tuple[Path, LedgerKey]:
    """A federation without DP as the simulator wrote it before the fix (``--mechanism
    off``): a round aborted in advertise_keys, then a completed one; no DP block, no
    claim, and ``noise_seeded: true`` although there was no DP noise."""
    key = LedgerKey.generate()
    ledger = Ledger(path, key)
    ledger.append(
        _entry(1, None, None, delta=None, status="aborted", contributed=0, noise_seeded=True,
               dropouts={"advertise_keys": 1}, reason="round aborted: 2 clients answered")
    )  # fmt: skip
    ledger.append(_entry(2, None, None, delta=None, noise_seeded=True))
    ledger.close()
    return path, key


def test_a_no_dp_ledger_is_reported_as_released_without_dp(tmp_path: Path) -> None:
    """The report said "the DP noise of round(s) 1, 2 was seeded" and "budget spent:
    epsilon = - at delta = None" for a run that had no DP at all."""
    path, key = _no_dp_ledger(tmp_path / "off.sqlite")
    text, _ = build_report(path, key.public_key)
    status = text.split("\n- ledger public key", 1)[0]
    assert "**VERIFIED**" in status
    assert "**NOT PRIVATE**: released without differential privacy: no epsilon is claimed" in status
    assert "DP noise of round(s)" not in status and "was seeded" not in status
    assert "epsilon = -" not in text and "delta = None" not in text
    assert "- budget spent: none: released without differential privacy" in text


def test_the_report_links_only_a_plot_it_wrote(tmp_path: Path) -> None:
    """No row claims an epsilon, so there is no plot: the report linked
    ``ledger-report.png`` all the same, a file that was never written."""
    path, key = _no_dp_ledger(tmp_path / "off.sqlite")
    written = write_report(path, tmp_path / "off", key.public_key)
    assert sorted(p.name for p in written) == ["ledger-report.html", "ledger-report.md"]
    assert "ledger-report.png" not in (tmp_path / "off" / "ledger-report.md").read_text()
    assert "<img" not in (tmp_path / "off" / "ledger-report.html").read_text()
    # with a plot, the link and the file go together
    path, key, _ = _central_ledger(tmp_path / "central.sqlite")
    written = write_report(path, tmp_path / "central", key.public_key)
    assert (tmp_path / "central" / "ledger-report.png") in written
    assert "](ledger-report.png)" in (tmp_path / "central" / "ledger-report.md").read_text()


@pytest.mark.parametrize("unit", ["record", "client"])
def test_the_distributed_guide_says_each_round_is_charged_at_the_fewest_shares(unit: str) -> None:
    """Review of a run folder: the guide said the verifier counts "the honest noise
    shares really in each sum" (it charges every round at the fewest of any round) and
    that noise std is the shares' total (it is what the shares add when all arrive)."""
    from secagg.ledger.report import _reading_guide

    guide = " ".join(_reading_guide({"unit": unit, "mechanism": "distributed"}))
    assert "every round charged at the fewest of any round" in guide
    assert "really in each sum" not in guide
    assert "sized to add when every expected" in guide


def test_the_dpsgd_guide_says_its_steps_include_the_charged_release() -> None:
    from secagg.ledger.report import _reading_guide

    guide = " ".join(_reading_guide({"unit": "record", "mechanism": "dpsgd"}))
    assert "the steps include any release charged to the branch before training" in guide


def test_the_reports_epsilons_are_never_below_the_ledgers(tmp_path: Path) -> None:
    """To the nearest 1e-3, round 3's epsilon 4.01132 read 4.011 in the table and in
    "budget spent": below what the ledger records. Rounded up at the 3 decimals shown."""
    path, key, spent = _central_ledger(tmp_path / "central.sqlite")
    text, _ = build_report(path, key.public_key)
    accountant = PrivacyAccountant(DELTA, "rdp")
    rows = [line for line in text.splitlines() if re.match(r"\| [123] \| complete", line)]
    assert len(rows) == 3
    for row in rows:
        accountant.step(2.0, 1.0)
        cell = row.split("|")[-3].strip()  # cumulative ε, before the model digest
        assert float(cell) >= accountant.epsilon() > float(cell) - 1e-3
    line = next(x for x in text.splitlines() if x.startswith("- budget spent"))
    shown_spent = float(line.split("epsilon = ")[1].split()[0])
    assert shown_spent >= spent > shown_spent - 1e-3


@pytest.mark.parametrize(
    ("unit", "mechanism"),
    [
        ("record", "distributed"),
        ("record", "dpsgd"),
        ("client", "distributed"),
        ("client", "central"),
    ],
)
def test_a_recorded_adjacency_cannot_inject_markdown_into_the_guide(
    unit: str, mechanism: str
) -> None:
    """The guide quoted the ledger's ``dp.adjacency`` as it was: a signed but hostile (or
    mistaken) ledger could start a heading, a table row or a link in the report."""
    from secagg.ledger.report import _reading_guide

    hostile = "one record\n# You are fine\n| a | b |\n[click](http://example.com) *x*"
    dp = {"unit": unit, "mechanism": mechanism, "adjacency": hostile}
    lines = "\n".join(_reading_guide(dp)).splitlines()
    assert not any(line.startswith(("#", "|")) for line in lines)
    text = "\n".join(lines)
    assert "[click](" not in text and "\\[click\\]" in text and "\\*x\\*" in text
    honest = {"unit": unit, "mechanism": mechanism, "adjacency": "zero-out one client's update"}
    assert "zero-out one client's update" in " ".join(_reading_guide(honest))
