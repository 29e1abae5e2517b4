"""Record = customer for real data (DP review): a CSV's rows are transactions; with a
customer column DP-SGD protects the customer, without one every output says transaction."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from secagg.apps.models.tabular import load_creditcard_csv, load_labelled_csv
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.runner import load_branches
from secagg.errors import ConfigurationError


def _write(path: Path, customers: int = 300, seed: int = 3, ids: bool = True) -> Path:
    """Transactions of ``customers`` customers, 1 to 9 rows each, a few fraudsters."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["amount", *(["card_id"] if ids else []), "velocity", "is_fraud"])
        for c in range(customers):
            bad = c % 10 == 0
            for _ in range(int(rng.integers(1, 10))):
                fraud = int(bad and rng.random() < 0.8)
                out.writerow([f"{rng.normal(3 + 2 * fraud, 1):.3f}",
                              *([f"card-{c}"] if ids else []),
                              int(rng.poisson(2 + 4 * fraud)), fraud])  # fmt: skip
    return path


def test_the_customer_column_is_an_id_not_a_feature(tmp_path: Path) -> None:
    path = _write(tmp_path / "tx.csv")
    table = load_labelled_csv(path, "is_fraud", "card_id")
    assert table.feature_names == ("amount", "velocity")
    assert table.customers is not None and table.customers.shape == table.y.shape
    assert len(set(table.customers)) == 300


def test_without_the_customer_column_a_text_id_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"'card_id'.*not a number"):
        load_labelled_csv(_write(tmp_path / "tx.csv"), "is_fraud")


@pytest.mark.parametrize(
    ("column", "match"), [("account", "no customer column 'account'"), ("is_fraud", "label")]
)
def test_bad_customer_columns_are_named(tmp_path: Path, column: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        load_labelled_csv(_write(tmp_path / "tx.csv"), "is_fraud", column)


def test_an_empty_customer_id_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("amount,card_id,is_fraud\n1.0,a,0\n2.0, ,1\n")
    with pytest.raises(ConfigurationError, match="line 3: empty customer id"):
        load_labelled_csv(path, "is_fraud", "card_id")


def test_the_creditcard_schema_takes_a_customer_column(tmp_path: Path) -> None:
    header = ["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class", "account"]
    rows = [[str(t), *(["0.1"] * 28), "12.5", str(t % 2), f"acct-{t % 3}"] for t in range(6)]
    path = tmp_path / "cc.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    table = load_creditcard_csv(path, "account")
    assert sorted(set(table.customers)) == ["acct-0", "acct-1", "acct-2"]  # type: ignore[arg-type]
    assert table.x.shape == (6, 31)


@pytest.mark.parametrize("kind", ["iid", "dirichlet", "feature"])
def test_a_customer_stays_in_one_branch_and_one_side_of_the_split(
    tmp_path: Path, kind: str
) -> None:
    """A customer split across train and test, or across branches, would be counted
    as two units; each customer's rows stay together."""
    config = SimulationConfig(
        branches=3, source="csv", path=str(_write(tmp_path / "tx.csv")), label="is_fraud",
        customer_column="card_id", partition=kind,
    )  # fmt: skip
    table = load_labelled_csv(config.path, "is_fraud", "card_id")  # type: ignore[arg-type]
    branches = load_branches(config)
    owner: dict[str, str] = {}
    for branch in branches:
        assert branch.customers_train is not None
        assert branch.customers_train.size == branch.num_train
        for customer in set(branch.customers_train):
            assert owner.setdefault(customer, branch.name) == branch.name
    # a customer trains on at most max_rows_per_customer of their rows (8 here)
    for branch in branches:
        _, per_customer = np.unique(branch.customers_train, return_counts=True)  # type: ignore[call-overload]
        assert per_customer.max() <= config.max_rows_per_customer
    assert sum(b.num_train + b.y_test.size for b in branches) < table.y.size  # 9-row ones
    # the test rows belong to customers no branch trains on
    trained = set(owner)
    test_rows = sum(b.y_test.size for b in branches)
    counts = {c: int((table.customers == c).sum()) for c in set(table.customers)}  # type: ignore[arg-type]
    assert test_rows == sum(n for c, n in counts.items() if c not in trained)


def test_the_protected_unit_is_named_from_the_data() -> None:
    assert SimulationConfig().protected == "customer"  # synthetic: a card, several rows
    csv_config = SimulationConfig(source="csv", path="x.csv", label="y")
    assert csv_config.protected == "transaction"
    assert csv_config.with_changes(customer_column="id").protected == "customer"
    client = csv_config.with_changes(unit="client", mechanism="central", standardize="none")
    assert client.protected == "client"
    with pytest.raises(ConfigurationError, match="customer_column"):
        SimulationConfig(customer_column="id")
    with pytest.raises(ConfigurationError, match="max_rows_per_customer"):
        SimulationConfig(max_rows_per_customer=0)
    with pytest.raises(ConfigurationError, match=r"unknown key data\.customer"):
        SimulationConfig.from_dict({"data": {"customer": "id"}})


@pytest.mark.integration  # DP-SGD branches over the runtime, one round
@pytest.mark.parametrize("ids", [True, False])
def test_the_ledger_and_the_report_name_the_unit_dpsgd_protected(tmp_path: Path, ids: bool) -> None:
    """Every output said "record" (read: customer) though a CSV row is a transaction and
    a customer with 5 rows got epsilon ~5x the claim. With a customer column the
    branches run user-level DP-SGD (q and delta over customers) and say "customer";
    without one every output says "transaction"."""
    from secagg.apps.simulation.report import privacy_lines
    from secagg.apps.simulation.runner import run_simulation
    from secagg.ledger import load_public_key, verify_ledger

    path = _write(tmp_path / "tx.csv", customers=400, ids=ids)
    config = SimulationConfig(
        branches=3, rounds=1, model="logistic", source="csv", path=str(path),
        label="is_fraud", customer_column="card_id" if ids else None, partition="iid",
        batch_size=32, dropout=0.0, local_epochs=1,
        epsilon=None, noise_multiplier=1.0,  # no calibration search: keeps the test quick
    )  # fmt: skip
    unit = "customer" if ids else "transaction"
    result = run_simulation(config, tmp_path / "run")
    assert f"({unit}-level" in privacy_lines(result)[0]
    assert result.settings["federated (secagg+)"]["epsilon_unit"] == unit
    audit = verify_ledger(
        tmp_path / "run" / "ledger.sqlite", load_public_key(tmp_path / "run" / "ledger.pub.pem")
    )
    assert audit.ok, audit.first_failure
    dp = audit.chain.rows[-1].entry["dp"]
    reports = dp["client_reports"].values()
    assert {r["unit"] for r in reports} == {unit}
    assert ("one customer (all their rows)" if ids else "group-privacy k") in dp["adjacency"]
    if ids:  # q over customers: far fewer units than rows
        branch = load_branches(config)[0]
        customers = len(set(branch.customers_train))  # type: ignore[arg-type]
        stats, (_, q, _), *_ = next(iter(reports))["history"]
        assert customers < branch.num_train
        assert q == pytest.approx(1 / -(-customers // 32))
        # the feature statistics, one customer contributing up to max_rows rows, are the
        # first release every branch's accountant composes
        assert stats == [pytest.approx(10.0 / 3**0.5), 1.0, 1]
        assert result.feature_statistics["rows_per_unit"] == 8
