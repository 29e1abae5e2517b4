"""Record-level distributed DP in ``secagg simulate``: DP gradient descent whose noise is
added once, inside the secure sum, accounted by the server and replayed by the audit."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.report import write_run_folder
from secagg.apps.simulation.runner import run_simulation
from secagg.errors import ConfigurationError

SMALL = dict(
    branches=3,
    rounds=3,
    train_rows=3000,
    test_rows_per_branch=400,
    dropout=0.0,
    unit="record",
    mechanism="distributed",
    seed=7,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("record-distributed")
    first, second = base / "a", base / "b"
    for out in (first, second):
        config = SimulationConfig(**SMALL)  # type: ignore[arg-type]
        write_run_folder(run_simulation(config, out), out)
    return first, second


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_a_run_completes_within_its_epsilon_and_trains_the_whole_model(
    runs: tuple[Path, Path],
) -> None:
    summary = _summary(runs[0])
    fed = next(v for k, v in summary["settings"].items() if k.startswith("federated"))
    assert 0 < fed["epsilon"] <= 3.0
    assert fed["epsilon_unit"] == "customer"
    server = summary["privacy_parameters"]["server"]
    assert server["mechanism"] == "distributed" and server["sample_rate"] == 1.0
    # the noise is sized for one customer: the vector bound over every branch's customers
    assert server["record_clip"] < server["clip"]
    local = summary["settings"]["local-only"]
    assert 0 < local["epsilon"] <= 3.0  # a branch alone adds all the noise itself
    # the whole MLP (2 081 trainable weights, 4 bytes each) travels, not the 33-weight
    # head of DP-SGD: the noise is added once here, not once per branch
    assert fed["bytes_sent_per_branch_per_round"] > 4 * 2081


def test_the_same_seed_replays_the_same_metrics(runs: tuple[Path, Path]) -> None:
    a, b = (_summary(r)["settings"] for r in runs)
    for setting in a:
        assert a[setting]["pooled"]["auprc"] == b[setting]["pooled"]["auprc"], setting
    np.testing.assert_array_equal(
        np.load(runs[0] / "model.npy", allow_pickle=False),
        np.load(runs[1] / "model.npy", allow_pickle=False),
    )


def test_the_ledger_replays_the_servers_epsilon(runs: tuple[Path, Path]) -> None:
    from secagg.ledger.chain import load_public_key
    from secagg.ledger.verify import verify_ledger

    run = runs[0]
    key = load_public_key(str(run / "ledger.pub.pem"))
    result = verify_ledger(run / "ledger.sqlite", key)
    assert result.failure is None, result.failure
    assert len(result.epsilons) == SMALL["rounds"]
    fed = next(v for k, v in _summary(run)["settings"].items() if k.startswith("federated"))
    assert result.epsilons[-1][1] == pytest.approx(fed["epsilon"], rel=1e-9)


def test_secure_statistics_are_refused_naming_the_keys() -> None:
    with pytest.raises(ConfigurationError, match="standardize"):
        SimulationConfig(**SMALL, standardize="secure")  # type: ignore[arg-type]


def test_branch_verdicts_resample_cards_not_transactions(runs: tuple[Path, Path]) -> None:
    """A compromised card's burst of frauds is one draw: the per-branch intervals resample
    the synthetic world's cards, and the report says so."""
    verdicts = _summary(runs[0])["branch_verdicts"]
    assert len(verdicts) == SMALL["branches"]
    for v in verdicts.values():
        assert v["resampled"] == "card"
        assert 1 <= v["test_fraud_cards"] <= v["test_frauds"]
        assert v["judged"] == (v["test_fraud_cards"] >= 2)
    assert "resampling the branch's cards" in (runs[0] / "report.md").read_text()


@pytest.mark.parametrize(("customer_column", "unit"), [("card", "customer"), (None, "transaction")])
def test_a_csv_run_signs_the_unit_it_clipped(
    tmp_path: Path, customer_column: str | None, unit: str
) -> None:
    """DP audit (2026-12-04): rows without a customer column are clipped one by one,
    so the mechanism (and its ledger adjacency) protects a transaction, not a customer."""
    from secagg.apps.simulation.runner import federation_config

    csv = tmp_path / "tx.csv"
    csv.write_text("card,amount,is_fraud\n" + "c1,1.0,0\n" * 3)
    synthetic_only = ("train_rows", "test_rows_per_branch")  # a CSV brings its own rows
    settings = {k: v for k, v in SMALL.items() if k not in synthetic_only}
    config = SimulationConfig(
        **(settings | {"seed": 1}),  # type: ignore[arg-type]
        source="csv",
        path=str(csv),
        label="is_fraud",
        customer_column=customer_column,
        standardize="none",
    )
    dp = federation_config(config, 10, tmp_path / "state.sqlite", units_total=100).dp
    assert dp.record_unit == unit == config.protected


@pytest.mark.parametrize(("customer_column", "max_rows"), [("card", 8), (None, None)])
def test_the_recorded_rows_per_unit_are_those_of_the_unit_that_ran(
    tmp_path: Path, customer_column: str | None, max_rows: int | None
) -> None:
    """Before: summary.json's record-level distributed parameters said ``max_rows: 8`` for
    a CSV without a customer column, whose units are single rows (the cap is never
    applied there, and ``as_dict`` already drops ``max_rows_per_customer``)."""
    from types import SimpleNamespace

    from secagg.apps.simulation.runner import privacy_parameters

    csv = tmp_path / "tx.csv"
    csv.write_text("card,amount,is_fraud\n" + "c1,1.0,0\n" * 3)
    synthetic_only = ("train_rows", "test_rows_per_branch")
    settings = {k: v for k, v in SMALL.items() if k not in synthetic_only}
    config = SimulationConfig(
        **settings,  # type: ignore[arg-type]
        source="csv",
        path=str(csv),
        label="is_fraud",
        customer_column=customer_column,
        standardize="none",
    )
    dp = SimpleNamespace(noise_multiplier=1.0, record_clip=0.1, delta=1e-5, epsilon_budget=3.0)
    run = SimpleNamespace(server_dp=dp, noise_shares=[3, 3, 3])
    server = privacy_parameters(config, run, [])["server"]  # type: ignore[arg-type]
    assert server["unit"] == config.protected
    assert server["max_rows"] == max_rows


#: a record-level distributed run small enough to refuse in seconds: 3 branches of 110
#: to 170 customers (408 in all, seed 0), so 1 / N = 0.00245 and the smallest branch's
#: 1 / n = 0.0091
SHORT_FLAGS = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--train-rows"]
SHORT_FLAGS += ["3000", "--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]
SHORT_FLAGS += ["--unit", "record", "--mechanism", "distributed", "--seed", "0"]


@pytest.mark.parametrize("delta", ["0.5", "0.003"])
def test_a_delta_not_below_one_over_all_units_is_refused_before_training(
    tmp_path: Path, delta: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--unit record --mechanism distributed --delta 0.5`` ran and printed "ε = 2.864
    (customer-level, δ = 0.5)": only ``delta < 1`` was asked, where DP-SGD refuses a
    delta not below 1 / n. This mechanism protects a customer among all branches'
    N = 408, so 0.003 (below every branch's own 1 / n) is refused too, naming the flag,
    before the prior's fit."""
    from click.testing import CliRunner

    from secagg.apps.cli import main
    from secagg.apps.simulation import runner

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the prior was fitted before the refusal")

    monkeypatch.setattr(runner, "prior_model", refuse)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["simulate", *SHORT_FLAGS, "--delta", delta, "--out", str(out)]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"Error: --delta {float(delta)} is not below 1 / n = 0.00245 for the n = 408 "
        "customers of all 3 branches (record-level distributed DP protects one among "
        "them all): a larger delta allows publishing a whole customer; choose a smaller one"
    ], result.stderr
    assert not out.exists()


def test_the_record_distributed_delta_rule_is_one_over_all_units(tmp_path: Path) -> None:
    """Just below 1 / N passes the check; at 1 / N it is refused, from a file's key as
    well; and a prior's delta composes against the same N (it was each branch's n)."""
    from secagg.apps.simulation.config import spelled_for
    from secagg.apps.simulation.runner import (
        check_composed_delta,
        check_record_distributed_delta,
        load_branches,
    )

    base = SimulationConfig(
        branches=3, rounds=1, local_epochs=1, train_rows=3000, test_rows_per_branch=400,
        unit="record", mechanism="distributed", seed=0,
    )  # fmt: skip
    branches = load_branches(base)
    check_record_distributed_delta(replace(base, delta=1 / 408 * 0.999), branches)
    with (
        spelled_for(flags={}, file_keys={"delta": 1 / 408}),
        pytest.raises(ConfigurationError, match=r"^privacy\.delta = 0\.00245\d* is not below"),
    ):
        check_record_distributed_delta(replace(base, delta=1 / 408), branches)
    prior = tmp_path / "model.npy"
    np.save(prior, np.zeros(4, dtype=np.float32), allow_pickle=False)
    composed = replace(base, delta=1e-3, prior_path=str(prior), prior_epsilon=1.0, prior_delta=2e-3)
    with pytest.raises(ConfigurationError, match=r"for all 3 branches' n = 408 customers"):
        check_composed_delta(composed, branches)
