"""CSV loaders, partitions into branches, standardisation and splits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models.tabular import (
    CREDITCARD_COLUMNS,
    MAX_ALPHA,
    MIN_TEST_NEGATIVES,
    MIN_TEST_POSITIVES,
    MIN_TRAIN_NEGATIVES,
    MIN_TRAIN_POSITIVES,
    BranchMinimums,
    branch_minimums,
    load_creditcard_csv,
    load_labelled_csv,
    partition,
    standardize,
    train_test_split,
)
from secagg.errors import ConfigurationError

# --- CSV loaders ---------------------------------------------------------------------


def _write_creditcard(path: Path, rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(rows, 28))
    amount = rng.exponential(50, rows)
    time = np.sort(rng.uniform(0, 2 * 86_400, rows))
    label = (rng.random(rows) < 0.1).astype(int)
    label[:2] = [0, 1]
    header = ["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class"]
    lines = [",".join(header)]
    for i in range(rows):
        values = [
            f"{time[i]:.1f}",
            *(f"{x:.6f}" for x in v[i]),
            f"{amount[i]:.2f}",
            f'"{label[i]}"',
        ]
        lines.append(",".join(values))
    path.write_text("\n".join(lines) + "\n")
    return v, label


def test_creditcard_loader_reads_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "creditcard.csv"
    v, label = _write_creditcard(path, 50)
    table = load_creditcard_csv(path)
    assert table.x.shape == (50, 31) and table.x.dtype == np.float32
    assert np.array_equal(table.y, label)
    assert np.allclose(table.x[:, :28], v, atol=1e-5)
    assert table.feature_names[:2] == ("V1", "V2") and table.feature_names[-3] == "log_amount"
    assert np.allclose(table.x[:, -2] ** 2 + table.x[:, -1] ** 2, 1.0, atol=1e-5)
    assert CREDITCARD_COLUMNS[-1] == "Class"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("Time,V1,Amount,Class\n1,2,3,0\n", "lacks the credit-card columns"),
        ("", "is empty"),
    ],
)
def test_creditcard_loader_refuses_other_layouts(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=error):
        load_creditcard_csv(path)


def test_creditcard_loader_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "creditcard.csv"
    _write_creditcard(path, 10)
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace('"', "").rsplit(",", 1)[0] + ",2"  # a label of 2
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigurationError, match=r"line 6: label 'Class' is 2; it must be 0"):
        load_creditcard_csv(path)
    with pytest.raises(ConfigurationError, match="no CSV file"):
        load_creditcard_csv(tmp_path / "missing.csv")


def test_labelled_csv_loader(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("amount,is_fraud,velocity\n10.5,0,1\n999,1,7\n3,0,0\n")
    table = load_labelled_csv(path, "is_fraud")
    assert table.feature_names == ("amount", "velocity")
    assert table.y.tolist() == [0, 1, 0]
    assert table.x[1].tolist() == [999.0, 7.0]
    with pytest.raises(ConfigurationError, match="no label column 'fraud'"):
        load_labelled_csv(path, "fraud")
    path.write_text("amount,is_fraud\n10.5,0\nabc,1\n")
    with pytest.raises(ConfigurationError, match=r"line 3, column 'amount'"):
        load_labelled_csv(path, "is_fraud")
    path.write_text("amount,is_fraud\n10.5,0\n1,1,3\n")
    with pytest.raises(ConfigurationError, match="line 3: 3 fields"):
        load_labelled_csv(path, "is_fraud")


# --- partitions ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.integers(20, 400),
    st.integers(2, 9),
    st.sampled_from(["iid", "dirichlet", "feature"]),
    st.floats(0.05, 10),
    st.integers(0, 2**31),
)
def test_partitions_are_disjoint_cover_every_row_and_leave_no_branch_empty(
    rows: int, branches: int, kind: str, alpha: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.2).astype(int)
    feature = rng.normal(size=rows)
    parts = partition(labels, branches, kind=kind, alpha=alpha, seed=seed, feature=feature)
    assert len(parts) == branches
    assert all(p.size >= 1 for p in parts)
    joined = np.concatenate(parts)
    assert np.array_equal(np.sort(joined), np.arange(rows))
    again = partition(labels, branches, kind=kind, alpha=alpha, seed=seed, feature=feature)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_dirichlet_label_skew_is_skewed_and_iid_is_not() -> None:
    labels = np.r_[np.zeros(5000, int), np.ones(5000, int)]
    skewed = partition(labels, 5, kind="dirichlet", alpha=0.1, seed=1)
    iid = partition(labels, 5, kind="iid", seed=1)
    share = lambda parts: [labels[p].mean() for p in parts]  # noqa: E731
    assert np.ptp(share(skewed)) > 0.5
    assert np.ptp(share(iid)) < 0.1
    with pytest.raises(ConfigurationError, match="partition kind"):
        partition(labels, 3, kind="zipf")
    with pytest.raises(ConfigurationError, match="one feature value per row"):
        partition(labels, 3, kind="feature")


def test_standardize_uses_training_statistics_and_split_is_disjoint() -> None:
    train = np.array([[0.0, 5.0], [2.0, 5.0]], dtype=np.float32)
    test = np.array([[4.0, 5.0]], dtype=np.float32)
    scaled_train, scaled_test = standardize(train, train, test)[1:]
    assert scaled_train[:, 0].tolist() == [-1.0, 1.0]
    assert scaled_test[0].tolist() == [3.0, 0.0]  # constant column: left centred, not NaN
    a, b = train_test_split(np.arange(100), 0.3, seed=2)
    assert a.size == 70 and b.size == 30 and not set(a) & set(b)


# --- minimums: no branch without rows or frauds ----------------------------------------


def _labels(units: int, positives: int, seed: int) -> np.ndarray:
    labels = np.zeros(units, dtype=np.int8)
    labels[np.random.default_rng(seed).choice(units, positives, replace=False)] = 1
    return labels


@settings(max_examples=120, deadline=None)
@given(
    st.integers(2, 600),
    st.data(),
    st.integers(2, 10),
    st.sampled_from(["iid", "dirichlet", "feature"]),
    st.floats(0.05, 10),
    st.integers(0, 2**31),
)
def test_partition_honours_the_minimums_or_refuses_exactly_when_infeasible(
    units: int, data: st.DataObject, branches: int, kind: str, alpha: float, seed: int
) -> None:
    positives = data.draw(st.integers(0, units), label="positives")
    # up to one more than feasible: the refusals are tested at the boundary
    min_rows = data.draw(st.integers(1, units // branches + 1), label="min_rows")
    min_positives = data.draw(st.integers(0, positives // branches + 1), label="min_pos")
    labels = _labels(units, positives, seed)
    feature = np.random.default_rng(seed + 1).normal(size=units)
    kwargs = dict(kind=kind, alpha=alpha, seed=seed, feature=feature,
                  min_rows=min_rows, min_positives=min_positives)  # fmt: skip
    feasible = positives >= branches * min_positives and units >= branches * min_rows
    if not feasible:
        with pytest.raises(ConfigurationError, match="cannot give") as refused:
            partition(labels, branches, **kwargs)  # type: ignore[arg-type]
        assert f"{branches} branches at least" in str(refused.value)
        assert str(positives if positives < branches * min_positives else units) in str(
            refused.value
        )
        return
    parts = partition(labels, branches, **kwargs)  # type: ignore[arg-type]
    assert len(parts) == branches
    assert all(p.size >= min_rows for p in parts)
    assert all(labels[p].sum() >= min_positives for p in parts)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(units))
    if kind != "feature":  # equal sizes: the skew is in the label mix only
        assert max(p.size for p in parts) - min(p.size for p in parts) <= 1
    if kind == "iid" and min_positives > 0:  # positives dealt out evenly too
        counts = [int(labels[p].sum()) for p in parts]
        assert max(counts) - min(counts) <= 1
    again = partition(labels, branches, **kwargs)  # type: ignore[arg-type]
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_partition_keeps_iid_results_and_checks_its_arguments() -> None:
    # without minimums the iid split is the seeded shuffle it always was
    parts = partition(np.zeros(10, int), 3, seed=4)
    assert [p.tolist() for p in parts] == [[0, 1, 7, 8], [3, 4, 6], [2, 5, 9]]
    labels = np.zeros(10, int)
    with pytest.raises(ConfigurationError, match="cannot split 10 rows into 1 branches"):
        partition(labels, 1)
    with pytest.raises(ConfigurationError, match="10 rows cannot give 11 branches at least 1"):
        partition(labels, 11)
    with pytest.raises(ConfigurationError, match="min_rows must be at least 1"):
        partition(labels, 2, min_rows=0)
    with pytest.raises(ConfigurationError, match="0 fraud customers cannot give 2 branches"):
        partition(labels, 2, min_positives=1, unit="customer")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 200), st.integers(2, 20))
def test_branch_minimums_follow_the_documented_rule(
    units: int, positives: int, branches: int
) -> None:
    positives = min(positives, units)
    each = MIN_TRAIN_POSITIVES + MIN_TEST_POSITIVES
    if positives < branches * each:
        with pytest.raises(ConfigurationError) as refused:
            branch_minimums(units, positives, branches)
        message = str(refused.value)
        assert message.startswith(f"{positives} fraud row")
        assert f"cannot give {branches} branches at least {each} each" in message
        assert f"({MIN_TRAIN_POSITIVES} for training, {MIN_TEST_POSITIVES} for testing)" in message
        return
    minimums = branch_minimums(units, positives, branches)
    assert minimums == BranchMinimums(
        max(each, units // (4 * branches)), each, MIN_TRAIN_POSITIVES, MIN_TEST_POSITIVES
    )
    assert units >= branches * minimums.min_rows  # feasible for partition too


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 300),
    st.data(),
    st.floats(0.1, 0.9),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 2**31),
)
def test_stratified_split_gives_both_sides_their_positives(
    size: int, data: st.DataObject, fraction: float, min_test: int, min_train: int, seed: int
) -> None:
    positives = data.draw(st.integers(0, size), label="positives")
    rows = np.sort(np.random.default_rng(seed).choice(10 * size, size, replace=False))
    labels = _labels(size, positives, seed)
    kwargs = dict(labels=labels, min_test_positives=min_test, min_train_positives=min_train)
    if positives < min_test + min_train:
        with pytest.raises(ConfigurationError, match=f"{positives} fraud row"):
            train_test_split(rows, fraction, seed, **kwargs)  # type: ignore[arg-type]
        return
    train, test = train_test_split(rows, fraction, seed, **kwargs)  # type: ignore[arg-type]
    assert np.array_equal(np.sort(np.r_[train, test]), rows)
    label_of = dict(zip(rows.tolist(), labels.tolist(), strict=True))
    train_p = sum(label_of[r] for r in train.tolist())
    test_p = sum(label_of[r] for r in test.tolist())
    assert train_p >= min_train and test_p >= min_test
    assert test_p == min(max(round(positives * fraction), min_test), positives - min_train)
    if positives >= 2 and min_test >= 1 and min_train >= 1:
        assert train_p >= 1 and test_p >= 1
    if positives >= 2 and 0.25 <= fraction <= 0.75 and max(min_test, min_train) < positives:
        assert train_p >= 1 and test_p >= 1  # its share rounds to both sides
    # the sizes are the unstratified ones whenever the legitimate rows allow it
    cut = max(1, round(size * (1 - fraction)))
    if 0 <= size - cut - test_p <= size - positives:
        assert train.size == cut
    again = train_test_split(rows, fraction, seed, **kwargs)  # type: ignore[arg-type]
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)


def test_unstratified_split_is_unchanged() -> None:
    """Without labels the split is the one earlier versions made (results reproduce)."""
    train, test = train_test_split(np.arange(10), 0.3, 5)
    assert train.tolist() == [1, 2, 3, 4, 6, 7, 9] and test.tolist() == [0, 5, 8]
    train, test = train_test_split(np.arange(3, 40, 3), 0.25, 11)
    assert test.tolist() == [3, 15, 27]
    with pytest.raises(ConfigurationError, match="needs the labels"):
        train_test_split(np.arange(10), 0.3, 5, min_test_positives=1)
    with pytest.raises(ConfigurationError, match="one label per row"):
        train_test_split(np.arange(10), 0.3, 5, labels=np.zeros(9))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_the_reviewers_credit_card_case(seed: int) -> None:
    """20 000 rows, 44 frauds, 8 branches, dirichlet alpha 0.5: the unconstrained split
    gave branches of 78 to 4 900 rows and 4 branches without a test fraud. With the
    default minimums (625 rows, 2 + 2 frauds: 44 >= 8 * 4, so feasible) every branch
    has 2 500 rows, at least 2 training and 2 test frauds; 12 branches are refused."""
    units, frauds, branches = 20_000, 44, 8
    labels = _labels(units, frauds, seed)
    minimums = branch_minimums(units, frauds, branches)
    assert minimums == (625, 4, 2, 2)
    parts = partition(labels, branches, kind="dirichlet", alpha=0.5, seed=seed,
                      min_rows=minimums.min_rows, min_positives=minimums.min_positives)  # fmt: skip
    assert [p.size for p in parts] == [2500] * branches
    for b, units_of_branch in enumerate(parts):  # as the runner splits: seed + b
        train, test = train_test_split(
            units_of_branch, 0.3, seed + b, labels=labels[units_of_branch],
            min_train_positives=minimums.min_train_positives,
            min_test_positives=minimums.min_test_positives,
        )  # fmt: skip
        assert train.size >= 0.7 * minimums.min_rows
        assert labels[train].sum() >= 2 and labels[test].sum() >= 2
    assert sum(int(labels[p].sum()) for p in parts) == frauds
    with pytest.raises(ConfigurationError) as refused:
        branch_minimums(units, frauds, 12)
    assert str(refused.value) == (
        "44 fraud rows cannot give 12 branches at least 4 each (2 for training, 2 for "
        "testing): lower the number of branches to 11 at the most, or use a larger file"
    )


# --- a bank's file, as it really arrives ------------------------------------------------


def test_a_path_that_is_no_readable_file_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory (``--path ""`` is the working directory; ``path = "data/"`` in a TOML
    file) raised IsADirectoryError, and an unreadable file PermissionError: a traceback
    out of ``secagg simulate`` instead of one line."""
    with pytest.raises(ConfigurationError, match=r"is a directory, not a CSV file"):
        load_creditcard_csv(tmp_path)
    with pytest.raises(ConfigurationError, match=r"is a directory, not a CSV file"):
        load_labelled_csv(tmp_path, "is_fraud")
    from secagg.apps.models import tabular

    class DeniedOs:
        """``os`` as the loader sees it, except that every open is denied."""

        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        def open(self, path: object, *args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied", str(path))

    # the loader opens the file once, with os.open (its kind from that descriptor)
    monkeypatch.setattr(tabular, "os", DeniedOs())
    with pytest.raises(ConfigurationError, match=r"x\.csv cannot be read: Permission denied"):
        load_creditcard_csv(tmp_path / "x.csv")


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" export starts with a BOM: the file was refused as lacking
    'Time' (or having no label / customer column), though every column is there."""
    path = tmp_path / "creditcard.csv"
    _, label = _write_creditcard(path, 20)
    path.write_text("\ufeff" + path.read_text(), encoding="utf-8")
    assert np.array_equal(load_creditcard_csv(path).y, label)
    path.write_text("\ufeffcard,amount,is_fraud\na,1.5,0\nb,2.5,1\n", encoding="utf-8")
    table = load_labelled_csv(path, "is_fraud", "card")
    assert table.customers.tolist() == ["a", "b"]  # type: ignore[union-attr]
    assert table.feature_names == ("amount",)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("Time;V1;Amount;Class\n1;2;3;0\n", r"separated by ';', not by commas"),
        ("amount\tis_fraud\n1\t0\n", r"separated by tabs, not by commas"),
    ],
)
def test_another_separator_is_named(tmp_path: Path, content: str, error: str) -> None:
    """A semicolon CSV (the European Excel export) was "lacks the credit-card columns
    ['Time', 'V1', ..., 'Class']", all 31 of them, without saying why."""
    path = tmp_path / "export.csv"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=error):
        load_creditcard_csv(path)
    with pytest.raises(ConfigurationError, match=error):
        load_labelled_csv(path, "is_fraud")


def test_a_compressed_file_or_a_workbook_is_named(tmp_path: Path) -> None:
    """A gzip file, an Excel workbook or UTF-16 text was "not a readable CSV file:
    'utf-8' codec can't decode byte 0x8b in position 1": true, but not what to do."""
    import gzip
    import zipfile

    path = tmp_path / "creditcard.csv"
    _write_creditcard(path, 5)
    packed = tmp_path / "creditcard.csv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(ConfigurationError, match=r"csv\.gz is gzip-compressed: decompress it"):
        load_creditcard_csv(packed)
    book = tmp_path / "creditcard.xlsx"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", "<sheet>" + "\x96" * 50 + "</sheet>")
    with pytest.raises(ConfigurationError, match=r"xlsx is a zip archive .*save it as CSV"):
        load_labelled_csv(book, "is_fraud")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(b"amount,is_fraud,merchant\n1,0,cafe\n2,1,caf\xe9\n")
    with pytest.raises(ConfigurationError, match=r"line 3 is not UTF-8 text \(byte 0xe9\)"):
        load_labelled_csv(latin, "is_fraud")
    wide = tmp_path / "unicode.txt"
    wide.write_text(path.read_text(), encoding="utf-16")  # Excel's "Unicode text"
    with pytest.raises(ConfigurationError, match=r"txt is UTF-16 text: save it as UTF-8"):
        load_creditcard_csv(wide)


def test_a_duplicated_column_name_is_refused_not_half_read(tmp_path: Path) -> None:
    """A label column copied by a join ("amount,is_fraud,...,is_fraud") was read as the
    label *and* as a feature named 'is_fraud': the models scored AUPRC 1.000 on pure-noise
    features. In the credit-card layout the second 'Class' or 'V1' was silently ignored,
    whichever of the two was right."""
    path = tmp_path / "tx.csv"
    path.write_text("amount,is_fraud,velocity,is_fraud\n1,0,3,0\n2,1,4,1\n")
    twice = r"column 'is_fraud' appears 2 times in the header \(columns 2, 4\)"
    with pytest.raises(ConfigurationError, match=twice):
        load_labelled_csv(path, "is_fraud")
    path.write_text("card,amount,card,is_fraud\na,1,b,0\nc,2,d,1\n")
    with pytest.raises(ConfigurationError, match=r"column 'card' appears 2 times"):
        load_labelled_csv(path, "is_fraud", "card")
    path.write_text("amount, amount,is_fraud\n1,2,0\n3,4,1\n")  # the same after the strip
    with pytest.raises(ConfigurationError, match=r"column 'amount' appears 2 times"):
        load_labelled_csv(path, "is_fraud")
    _write_creditcard(path, 5)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",V1", *(line + ",99" for line in lines[1:])]) + "\n")
    with pytest.raises(ConfigurationError, match=r"column 'V1' appears 2 times .*columns 2, 32"):
        load_creditcard_csv(path)


def test_an_unnamed_column_is_no_feature(tmp_path: Path) -> None:
    """pandas' ``to_csv`` without ``index=False`` writes an unnamed row-number column; the
    generic loader made it a feature named '' (the row number: a leak in a file sorted by
    label). The credit-card layout reads only its own columns and still ignores it."""
    path = tmp_path / "tx.csv"
    path.write_text(",amount,is_fraud\n0,1.5,0\n1,2.5,1\n")
    with pytest.raises(ConfigurationError, match=r"column 1 of the header has no name"):
        load_labelled_csv(path, "is_fraud")
    _, label = _write_creditcard(path, 5)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(f"{i - 1 if i else ''},{line}" for i, line in enumerate(lines)))
    assert np.array_equal(load_creditcard_csv(path).y, label)


def test_a_value_beyond_float32_is_named_not_made_infinite(tmp_path: Path) -> None:
    """A feature of 1e39 passed the finiteness check in float64 and became inf in the
    float32 table (a numpy RuntimeWarning only): the run then reported every model as
    "diverged: a learning rate too high is the usual cause"."""
    path = tmp_path / "tx.csv"
    path.write_text("amount,is_fraud\n1.5,0\n-1e39,1\n")
    with pytest.raises(ConfigurationError, match=r"line 3, column 'amount': -1e\+39 is beyond"):
        load_labelled_csv(path, "is_fraud")
    _write_creditcard(path, 5)
    lines = path.read_text().splitlines()
    fields = lines[4].split(",")
    fields[1], fields[29] = "3e38", "1e300"  # V1 still fits; Amount is read as log(1 + x)
    lines[4] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    table = load_creditcard_csv(path)
    assert np.isfinite(table.x).all() and table.x[3, 0] == np.float32(3e38)
    fields[1] = "4e38"
    lines[4] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigurationError, match=r"line 5, column 'V1': 4e\+38 is beyond"):
        load_creditcard_csv(path)


def test_a_file_of_frauds_only_is_refused(tmp_path: Path) -> None:
    """Every row labelled 1 (no legitimate row; or a file where 1 marks the legitimate
    ones): ``secagg simulate`` trained on it and reported AUPRC 1.000 for every model,
    the value a constant score gets when there is nothing to rank the frauds against."""
    path = tmp_path / "tx.csv"
    path.write_text("amount,is_fraud\n1.5,1\n2.5,1\n3.5,1.0\n")
    with pytest.raises(ConfigurationError, match=r"every row of 'is_fraud' is 1 \(fraud\)"):
        load_labelled_csv(path, "is_fraud")
    path.write_text("amount,is_fraud\n1.5,1\n2.5,0\n3.5,1\n")
    assert load_labelled_csv(path, "is_fraud").y.tolist() == [1, 0, 1]


@pytest.mark.parametrize("bad", [2, -1, np.nan, 0.5])
def test_partition_and_split_refuse_labels_other_than_0_and_1(bad: float) -> None:
    """The loaders check the labels, the Python API did not: a label 2 (or -1, NaN, 0.5)
    was silently dealt out and split as a legitimate row."""
    labels = np.r_[np.tile([0.0, 1.0], 10), bad]
    with pytest.raises(ConfigurationError, match=r"labels must be 0 or 1 .*row 20 has"):
        partition(labels, 2, min_positives=1)
    with pytest.raises(ConfigurationError, match=r"labels must be 0 or 1 .*row 20 has"):
        train_test_split(np.arange(21), 0.3, 0, labels=labels, min_test_positives=1)
    with pytest.raises(ConfigurationError, match="labels must be 0 or 1"):
        partition(np.array(["0", "1"] * 10), 2)
    with pytest.raises(ConfigurationError, match=r"one label per row \(a 1-D array\)"):
        partition(np.zeros((2, 10)), 2)


def test_split_refuses_a_row_given_twice() -> None:
    """Row 1 given three times went to both sides: the same transaction trained on and
    tested on."""
    with pytest.raises(ConfigurationError, match=r"row indices must be distinct \(1 repeats\)"):
        train_test_split(np.array([1, 1, 1, 2]), 0.5, 0)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"kind": "dirichlet", "alpha": float("nan")}, r"alpha must lie in \(0, 1e\+06\]"),
        ({"kind": "feature", "bins": 0}, r"bins must be an integer >= 1, not 0"),
        ({"kind": "feature", "bins": 2.5}, r"bins must be an integer >= 1, not 2\.5"),
        ({"kind": "feature", "nan_feature": True}, "feature values must be finite"),
        ({"seed": -1}, r"seed must be an integer >= 0, not -1"),
        ({"seed": 1.5}, r"seed must be an integer >= 0, not 1\.5"),
        ({"branches": 2.5}, r"branches must be an integer >= 2, not 2\.5"),
        ({"min_rows": 2.5}, r"min_rows must be an integer, not 2\.5"),
        ({"min_positives": 1.5}, r"min_positives must be an integer, not 1\.5"),
    ],
)
def test_partition_refuses_arguments_it_would_misread(kwargs: dict, error: str) -> None:
    """A NaN alpha gave an even split (the Dirichlet draw was NaN), bins 0 or -1 one bin,
    a NaN feature fell into a bin of its own, 2.5 branches gave 2, and a negative seed
    raised numpy's bare ValueError."""
    labels = np.tile([0, 1], 10)
    feature = np.arange(20.0)
    if kwargs.pop("nan_feature", False):
        feature[3] = np.nan
    branches = kwargs.pop("branches", 2)
    with pytest.raises(ConfigurationError, match=error):
        partition(labels, branches, feature=feature, **kwargs)


_BAD_ALPHAS = st.one_of(
    st.floats(max_value=0.0),  # 0, -0.0, negatives, -inf
    st.floats(min_value=MAX_ALPHA, exclude_min=True),  # past the cap, inf
    st.just(float("nan")),
    st.integers(max_value=0),
    st.integers(min_value=int(MAX_ALPHA) + 1),  # 10**400 too: past float's range
    st.sampled_from([True, False, None, "0.5", b"1", [0.5]]),
)


@settings(max_examples=150, deadline=None)
@given(_BAD_ALPHAS, st.sampled_from(["iid", "dirichlet", "feature"]))
def test_partition_refuses_an_alpha_outside_its_range(alpha: object, kind: str) -> None:
    """Through the library, ``alpha`` was only asked ``> 0``: ``inf`` and ``1e308`` put
    all but the minimum rows of a feature skew in the last branch (10, 10, 10 and
    1 970 of 2 000, after numpy's "invalid value encountered in cast"), ``True`` ran as
    1, and ``"0.5"`` or None was a bare TypeError. Each is a ConfigurationError naming
    alpha and the range, whatever the kind (the CLI's --alpha has the same cap)."""
    labels = np.tile([0, 1, 0, 0], 50)
    feature = np.arange(200.0)
    with pytest.raises(ConfigurationError, match=r"^alpha must .*\(0, 1e\+06\]"):
        partition(labels, 4, kind=kind, alpha=alpha, feature=feature)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=0.0, max_value=MAX_ALPHA, exclude_min=True),
        st.integers(1, int(MAX_ALPHA)),
        st.sampled_from([5e-324, 1e-300, MAX_ALPHA]),
    ),
    st.sampled_from(["dirichlet", "feature"]),
    st.integers(0, 2**31),
)
def test_partition_takes_every_alpha_in_its_range(alpha: float, kind: str, seed: int) -> None:
    """Every alpha in (0, MAX_ALPHA] splits: disjoint parts covering every row, each
    with its minimums, and no numpy warning (an invalid cast was the sign of NaN
    shares); at the cap the feature skew is near-IID, as a large alpha means."""
    import warnings

    labels = np.tile([0, 1, 0, 0], 50)
    feature = np.arange(200.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parts = partition(labels, 4, kind=kind, alpha=alpha, seed=seed, feature=feature,
                          min_rows=10, min_positives=4)  # fmt: skip
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(200))
    assert all(p.size >= 10 and labels[p].sum() >= 4 for p in parts)
    if alpha >= 1e5:
        assert max(p.size for p in parts) - min(p.size for p in parts) <= 8


def test_split_and_minimums_refuse_arguments_they_would_misread() -> None:
    with pytest.raises(ConfigurationError, match=r"seed must be an integer >= 0, not -1"):
        train_test_split(np.arange(10), 0.3, -1)
    with pytest.raises(ConfigurationError, match=r"min_test_positives must be an integer >= 0"):
        train_test_split(np.arange(10), 0.3, 0, labels=np.ones(10), min_test_positives=1.5)
    with pytest.raises(ConfigurationError, match=r"30 fraud rows but only 20 rows"):
        branch_minimums(20, 30, 2)
    with pytest.raises(ConfigurationError, match=r"units must be an integer >= 0, not -5"):
        branch_minimums(-5, 0, 2)


def test_standardize_refuses_what_it_cannot_scale() -> None:
    """A 1-D array raised numpy's TypeError, zero rows gave NaN statistics with a
    RuntimeWarning, and a NaN made its whole column NaN."""
    with pytest.raises(ConfigurationError, match=r"a 2-D array \(rows x features\)"):
        standardize(np.arange(5.0))
    with pytest.raises(ConfigurationError, match="at least one training row"):
        standardize(np.zeros((0, 3)))
    with pytest.raises(ConfigurationError, match=r"training value at row 1, column 0 is not"):
        standardize(np.array([[0.0, 1.0], [np.nan, 2.0]]))


def test_lines_are_counted_in_the_file_not_in_the_rows_kept(tmp_path: Path) -> None:
    """Blank lines are skipped, and a quoted field may span lines: the messages counted
    the rows kept, so after one blank line "line 4" pointed at the line above the bad
    one."""
    path = tmp_path / "tx.csv"
    path.write_text("amount,is_fraud\n1,0\n\n\nabc,1\n")
    with pytest.raises(ConfigurationError, match=r"line 5, column 'amount': 'abc'"):
        load_labelled_csv(path, "is_fraud")
    path.write_text('card,amount,is_fraud\n"a\nb",1,0\n\n ,2,1\n')
    with pytest.raises(ConfigurationError, match=r"line 5: empty customer id"):
        load_labelled_csv(path, "is_fraud", "card")
    path.write_text("amount,is_fraud\n1,0\n\n2,1,7\n")
    with pytest.raises(ConfigurationError, match=r"line 4: 3 fields"):
        load_labelled_csv(path, "is_fraud")
    path.write_text("amount,is_fraud\n1,0\n\n2,7\n")
    with pytest.raises(ConfigurationError, match=r"line 4: label 'is_fraud' is 7"):
        load_labelled_csv(path, "is_fraud")
    path.write_text("amount,is_fraud\n1,0\n\nnan,1\n")
    with pytest.raises(ConfigurationError, match=r"line 4, column 'amount': 'nan' is not a"):
        load_labelled_csv(path, "is_fraud")
    path.write_text("amount,is_fraud\n1,0\n\n1e39,1\n")
    with pytest.raises(ConfigurationError, match=r"line 4, column 'amount'"):
        load_labelled_csv(path, "is_fraud")
    _write_creditcard(path, 5)
    lines = path.read_text().splitlines()
    fields = lines[3].split(",")
    fields[29] = f"-{fields[29]}"  # Amount
    lines[3] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigurationError, match=r"line 4: Amount -\d.* must not be negative"):
        load_creditcard_csv(path)


def test_a_creditcard_column_cannot_be_the_customer_column(tmp_path: Path) -> None:
    """``--customer-column Amount`` took the amounts as ids and then said the file
    "lacks the credit-card columns ['Amount']", a column it plainly has."""
    path = tmp_path / "creditcard.csv"
    _write_creditcard(path, 5)
    with pytest.raises(ConfigurationError, match=r"'Amount' is one of the credit-card columns"):
        load_creditcard_csv(path, "Amount")


def test_the_loader_parses_into_floats_not_a_table_of_strings(tmp_path: Path) -> None:
    """The loader kept every field as a Python string before converting: about 312 MB at
    the peak for 100 000 rows of the credit-card layout (0.9 GB for the Kaggle file, 26
    times its float32 table). Parsed block by block into floats, the peak is a small
    multiple of the table (the table is built once from blocks: twice it, plus one
    block)."""
    import tracemalloc

    from _fraud_csv import write_creditcard_layout

    path = write_creditcard_layout(tmp_path / "creditcard.csv", rows=20_000)
    tracemalloc.start()
    try:
        table = load_creditcard_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert table.x.shape == (20_000, 31)
    bound = 4 * table.x.nbytes + 4 * 2**20  # about 14 MB; the old loader peaked at 70 MB
    assert peak < bound, f"peak {peak / 2**20:.1f} MiB, bound {bound / 2**20:.1f} MiB"


def test_a_file_too_large_for_memory_is_refused_with_the_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tens of millions of rows ran the machine out of memory with no message: the
    size of the table is estimated from the file's size once the first block of rows
    is read, and a table past the machine's memory is refused in one sentence."""
    from _fraud_csv import write_creditcard_layout

    from secagg.apps import cli_types

    path = write_creditcard_layout(tmp_path / "creditcard.csv", rows=5_000)
    monkeypatch.setattr(cli_types, "memory_limit", lambda: 2**20)
    with pytest.raises(ConfigurationError) as refused:
        load_creditcard_csv(path)
    message = str(refused.value)
    assert message.startswith(f"{path} (1.3 MiB) holds about ")
    rows = int(message.split("holds about ")[1].split(" rows")[0].replace(",", ""))
    assert 4_500 <= rows <= 5_500  # estimated from the first 4 096 rows
    assert message.endswith(
        "of memory to read it (2 copies of it at the peak), more than the 1.0 MiB this "
        "machine has: use a sample of the file"
    )
    monkeypatch.setattr(cli_types, "memory_limit", lambda: 2**30)
    assert load_creditcard_csv(path).x.shape == (5_000, 31)
    monkeypatch.setattr(cli_types, "memory_limit", lambda: None)  # no bound known
    assert load_creditcard_csv(path).x.shape == (5_000, 31)


def _numbers_csv(path: Path, rows: int, columns: int = 10) -> Path:
    rng = np.random.default_rng(7)
    body = [",".join(f"{v:.3f}" for v in rng.normal(size=columns)) + f",{i % 9 == 0:d}"
            for i in range(rows)]  # fmt: skip
    path.write_text(",".join(f"f{j}" for j in range(columns)) + ",y\n" + "\n".join(body) + "\n")
    return path


def test_a_file_shorter_than_one_block_is_checked_once_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a file of a block (4 096 rows) or more was estimated: a shorter one, however
    wide, was never checked. It is now, with its exact row count."""
    from secagg.apps import cli_types

    path = _numbers_csv(tmp_path / "short.csv", rows=1_000)
    monkeypatch.setattr(cli_types, "memory_limit", lambda: 2**16)
    with pytest.raises(ConfigurationError, match=r"short.csv \(.* MiB\) holds 1,000 rows, whose"):
        load_labelled_csv(path, "y")
    monkeypatch.setattr(cli_types, "memory_limit", lambda: 2**30)
    assert load_labelled_csv(path, "y").x.shape == (1_000, 10)


def test_a_wide_files_block_holds_fewer_rows_and_is_checked_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The float64 block was 4 096 rows whatever the width (3.2 GB at 100 000 columns).
    Its size is now bounded (here to 100 rows of 11 columns), the first block's
    estimate comes after those rows, before the rest is read (the bad row at line 500
    would be named otherwise), and the table is the same as read in large blocks."""
    from secagg.apps import cli_types
    from secagg.apps.models import tabular

    path = _numbers_csv(tmp_path / "wide.csv", rows=1_000)
    reference = load_labelled_csv(path, "y")
    monkeypatch.setattr(tabular, "_BLOCK_BYTES", 8 * 11 * 100)
    small_blocks = load_labelled_csv(path, "y")
    assert np.array_equal(small_blocks.x, reference.x)
    assert np.array_equal(small_blocks.y, reference.y)
    lines = path.read_text().splitlines()
    lines[499] = "oops," + lines[499].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigurationError, match="line 500"):
        load_labelled_csv(path, "y")
    monkeypatch.setattr(cli_types, "memory_limit", lambda: 2**16)
    with pytest.raises(ConfigurationError, match=r"holds about [0-9,]+ rows, whose table"):
        load_labelled_csv(path, "y")


def test_the_callers_peak_is_what_a_file_is_checked_against(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller that holds more copies of the table says so, and the refusal counts them."""
    from secagg.apps import cli_types
    from secagg.apps.models.tabular import MemoryPeak

    path = _numbers_csv(tmp_path / "t.csv", rows=5_000)
    per_copy = 5_000 * (4 * 10 + 1)
    block = 4096 * 11 * 8  # the float64 block of rows being converted
    monkeypatch.setattr(cli_types, "memory_limit", lambda: 3 * per_copy + block)
    assert load_labelled_csv(path, "y").x.shape == (5_000, 10)  # 2 copies fit
    with pytest.raises(ConfigurationError, match=r"in a study \(5 copies of it at the peak\)"):
        load_labelled_csv(path, "y", peak=MemoryPeak(5, "in a study"))


def test_a_byte_that_is_not_utf8_after_a_byte_order_mark_is_named(tmp_path: Path) -> None:
    """After a BOM the loader named the byte three places further on, and the line of
    that byte: 'line 1 ... (byte 0x61)' for a Latin-1 'é' in the header."""
    path = tmp_path / "tx.csv"
    path.write_bytes(b"\xef\xbb\xbfamount,is_fraud\n1,0\n2,1\ncaf\xe9,0\n")
    with pytest.raises(ConfigurationError, match=r"line 4 is not UTF-8 text \(byte 0xe9\)"):
        load_labelled_csv(path, "is_fraud")


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 8),
    st.integers(16, 300),
    st.floats(0.0, 0.7),
    st.sampled_from(["iid", "dirichlet", "feature"]),
    st.sampled_from([0.05, 0.5, 5.0]),
    st.integers(0, 2**31),
)
def test_every_branch_keeps_legitimate_units_on_both_sides_of_its_split(
    branches: int, units: int, fraud_share: float, kind: str, alpha: float, seed: int
) -> None:
    """As ``secagg simulate`` splits a CSV: with ``min_negatives`` every branch holds
    legitimate units, and its split leaves some in training and some in testing, or the
    data is refused naming the legitimate units. Why: where fraud is common, a small
    alpha made branches of frauds alone, whose test set scores every model AUPRC 1.0."""
    labels = _labels(units, round(units * fraud_share), seed)
    positives, negatives = int(labels.sum()), units - int(labels.sum())
    least_negatives = MIN_TRAIN_NEGATIVES + MIN_TEST_NEGATIVES
    try:
        minimums = branch_minimums(units, positives, branches)
    except ConfigurationError:
        return  # too few frauds: the rule tested above
    feature = np.random.default_rng(seed).normal(size=units) + labels
    kwargs = dict(kind=kind, alpha=alpha, seed=seed, feature=feature,
                  min_rows=minimums.min_rows, min_positives=minimums.min_positives)  # fmt: skip
    if negatives < branches * least_negatives:
        with pytest.raises(ConfigurationError, match=f"^{negatives} legitimate row"):
            partition(labels, branches, min_negatives=least_negatives, **kwargs)  # type: ignore[arg-type]
        return
    parts = partition(labels, branches, min_negatives=least_negatives, **kwargs)  # type: ignore[arg-type]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(units))
    for b, part in enumerate(parts):
        assert part.size >= minimums.min_rows and labels[part].sum() >= minimums.min_positives
        assert np.count_nonzero(labels[part] == 0) >= least_negatives
        train, test = train_test_split(
            part, 0.3, seed + b, labels=labels[part],
            min_train_positives=MIN_TRAIN_POSITIVES, min_test_positives=MIN_TEST_POSITIVES,
            min_train_negatives=MIN_TRAIN_NEGATIVES, min_test_negatives=MIN_TEST_NEGATIVES,
        )  # fmt: skip
        assert np.count_nonzero(labels[train] == 0) >= MIN_TRAIN_NEGATIVES
        assert np.count_nonzero(labels[test] == 0) >= MIN_TEST_NEGATIVES
    # a split that gave every branch its legitimate units already is unchanged
    plain = partition(labels, branches, **kwargs)  # type: ignore[arg-type]
    if all(np.count_nonzero(labels[p] == 0) >= least_negatives for p in plain):
        assert all(np.array_equal(a, b) for a, b in zip(plain, parts, strict=True))
