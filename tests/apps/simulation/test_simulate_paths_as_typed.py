"""``secagg simulate`` names a data or prior file that is not there as the user wrote it.

The path keys (``--path``, ``--prior-path``, ``data.stats_path`` and their file keys)
are made absolute before the run (so a run folder replays from any directory), and the
checks used to run after that: ``--path nofile.csv`` said ``--path
/home/me/runs/nofile.csv: no such file``, a path nobody typed. Each case runs in a fresh
working directory with a relative path, and the refusal must name that relative path and
not the directory it was resolved against.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _simulate_cli import one_line_error, simulate

CSV = ["--data", "csv", "--label", "is_fraud"]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory, with a longer name than any path a test types."""
    folder = tmp_path / "the-directory-the-command-ran-in"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def _refused(here: Path, *args: str) -> str:
    error = one_line_error(simulate(*args))
    assert str(here) not in error, error  # the typed path, not the resolved one
    return error


def _write_csv(path: Path) -> None:
    """A CSV that exists (its contents never read: every case is refused before)."""
    path.write_text("amount,is_fraud\n1.0,0\n2.0,1\n", encoding="utf-8")


def test_a_missing_csv_is_named_as_typed(here: Path) -> None:
    error = _refused(here, *CSV, "--path", "nofile.csv")
    assert error == "Error: --path nofile.csv: no such file"


def test_a_missing_csv_in_a_subfolder_is_named_as_typed(here: Path) -> None:
    error = _refused(here, *CSV, "--path", os.path.join("data", "tx.csv"))
    assert error == f"Error: --path {os.path.join('data', 'tx.csv')}: no such file"


def test_a_missing_prior_is_named_as_typed(here: Path) -> None:
    error = _refused(here, "--prior-path", "model.npy", "--prior-epsilon", "1")
    assert error == "Error: no prior model at model.npy (--prior-path)"


def test_a_missing_file_from_a_config_file_is_named_as_the_file_writes_it(here: Path) -> None:
    Path("c.toml").write_text(
        '[data]\nsource = "csv"\nlabel = "is_fraud"\npath = "sub/x.csv"\n', encoding="utf-8"
    )
    error = _refused(here, "--config", "c.toml")
    assert error == "Error: --config c.toml: data.path sub/x.csv: no such file"


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_the_feature_statistics_file_is_named_as_the_file_writes_it(here: Path, what: str) -> None:
    _write_csv(here / "tx.csv")
    if what == "folder":
        Path("stats").mkdir()
    Path("c.toml").write_text(
        '[data]\nsource = "csv"\nlabel = "is_fraud"\npath = "tx.csv"\n'
        'standardize = "public"\nstats_path = "stats"\n'
        '[privacy]\nunit = "client"\nmechanism = "central"\n',
        encoding="utf-8",
    )
    error = _refused(here, "--config", "c.toml")
    said = "data.stats_path stats is a directory, not a file"
    if what == "missing":
        said = "data.stats_path stats: no such file"
    assert error == f"Error: --config c.toml: {said}"


def test_a_prior_that_is_a_folder_in_a_config_file_is_named_as_written(here: Path) -> None:
    Path("m.npy").mkdir()
    Path("c.toml").write_text('[training]\nprior_path = "m.npy"\n', encoding="utf-8")
    error = _refused(here, "--config", "c.toml", "--prior-epsilon", "1")
    assert "m.npy (" in error and "prior_path) cannot be read: Is a directory" in error, error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_named_as_typed(here: Path) -> None:
    os.mkfifo("p.csv")
    error = _refused(here, *CSV, "--path", "p.csv")
    assert error == "Error: --path p.csv is a named pipe, not a file"


def test_a_name_the_terminal_would_not_show_as_written_is_quoted(here: Path) -> None:
    """Blanks the line would fold are shown by repr, as every path in an error is."""
    error = _refused(here, *CSV, "--path", "two  blanks.csv")
    assert error == "Error: --path 'two  blanks.csv': no such file"


def test_a_file_that_is_there_still_runs_past_the_check(here: Path) -> None:
    """The check refuses only what is missing: a present CSV goes on to the reader
    (whose own refusal, of a label column that is not there, proves it was read)."""
    _write_csv(here / "tx.csv")
    error = one_line_error(
        simulate("--data", "csv", "--label", "no_such_column", "--path", "tx.csv")
    )
    assert "no_such_column" in error and "no such file" not in error, error


@pytest.mark.parametrize("written", ["tx.csv/", os.path.join("nosub", "..", "tx.csv")])
def test_a_path_the_reader_opens_is_not_refused_for_its_spelling(here: Path, written: str) -> None:
    """The check looks at the absolute path the reader opens, not at the spelling: the
    absolute path drops a trailing slash and folds ``nosub/..`` (a folder that is not
    there), so both spellings read tx.csv, and a check of the written form refused them
    as "no such file"."""
    _write_csv(here / "tx.csv")
    error = one_line_error(
        simulate("--data", "csv", "--label", "no_such_column", "--path", written)
    )
    assert "no_such_column" in error and "no such file" not in error, error


def test_a_tilde_no_shell_expanded_is_said(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``path = "~/tx.csv"`` in a file is read from a folder called ``~`` here (no shell
    expands it): named as written, "no such file" denied a file the user sees in their
    home, so the refusal says the ``~`` was not expanded."""
    home = here.parent / "home"
    home.mkdir()
    _write_csv(home / "tx.csv")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))  # what Windows expands ~ to
    Path("c.toml").write_text(
        '[data]\nsource = "csv"\nlabel = "is_fraud"\npath = "~/tx.csv"\n', encoding="utf-8"
    )
    error = _refused(here, "--config", "c.toml")
    assert error == (
        "Error: --config c.toml: data.path ~/tx.csv: no such file (a leading ~ is not "
        "expanded here: write the home folder out)"
    )
    error = _refused(here, "--prior-path", "~/m.npy", "--prior-epsilon", "1")
    assert error == (
        "Error: no prior model at ~/m.npy (--prior-path; a leading ~ is not expanded "
        "here: write the home folder out)"
    )


# -- the readers' own refusals, met once the file is read, name it as written too ---------


def _write_rows(path: Path, *, fraud_every: int = 5, rows: int = 400) -> None:
    """A CSV two branches can split (a fraud every ``fraud_every`` rows)."""
    lines = ["amount,age,is_fraud"]
    lines += [f"{(i * 37) % 101 / 7:.3f},{i % 60},{int(i % fraud_every == 0)}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


TWO = ["--branches", "2", "--rounds", "1"]


def _said(here: Path, error: str, written: str) -> None:
    """``error`` names the file as written, not by the folder it was resolved against."""
    assert written in error and str(here) not in error, error


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["--label", "no_such_column"], "has no column 'no_such_column'"),
        (["--label", "is_fraud", "--customer-column", "card"], "has no customer column"),
        (["--label", "amount"], "label 'amount' is"),
        (["--label", "is_fraud", "--partition", "feature", "--partition-column", "x"], "no column"),
    ],
)
def test_a_csv_readers_refusal_names_the_file_as_typed(
    here: Path, args: list[str], what: str
) -> None:
    Path("data").mkdir()
    _write_rows(here / "data" / "tx.csv")
    written = os.path.join("data", "tx.csv")
    error = one_line_error(simulate("--data", "csv", "--path", written, *TWO, *args))
    assert what in error
    _said(here, error, written)


def test_the_credit_card_layout_names_the_file_as_typed(here: Path) -> None:
    _write_rows(here / "tx.csv")
    error = one_line_error(simulate("--data", "creditcard", "--path", "tx.csv", *TWO))
    assert "lacks the credit-card columns" in error
    _said(here, error, "tx.csv")


def test_a_csv_of_too_many_frauds_names_it_as_typed(here: Path) -> None:
    """A fraud share past the cap (an inverted label?) names the file."""
    _write_rows(here / "tx.csv", fraud_every=2)
    error = one_line_error(
        simulate(
            "--data", "csv", "--label", "is_fraud", "--path", "tx.csv", *TWO,
            "--max-fraud-share", "0.1",
        )
    )  # fmt: skip
    assert "rows (50.0 %) have 'is_fraud' = 1 (fraud)" in error, error
    _said(here, error, "tx.csv")


@pytest.mark.parametrize(
    ("content", "what"), [(b"{", "is not valid JSON"), (b'{"features": {}}', "no statistics")]
)
def test_a_feature_statistics_file_refused_is_named_as_written(
    here: Path, content: bytes, what: str
) -> None:
    _write_rows(here / "tx.csv")
    Path("stats.json").write_bytes(content)
    Path("c.toml").write_text(
        '[data]\nsource = "csv"\nlabel = "is_fraud"\npath = "tx.csv"\n'
        'standardize = "public"\nstats_path = "stats.json"\n'
        '[privacy]\nunit = "client"\nmechanism = "central"\n',
        encoding="utf-8",
    )
    error = one_line_error(simulate("--config", "c.toml", *TWO))
    assert what in error
    _said(here, error, "stats.json")


@pytest.mark.parametrize(
    "content", [b"not numpy", b"\x93NUMPY\x01\x00"], ids=["not-npy", "truncated"]
)
def test_a_prior_file_refused_is_named_as_typed(here: Path, content: bytes) -> None:
    Path("m.npy").write_bytes(content)
    error = one_line_error(simulate("--prior-path", "m.npy", "--prior-epsilon", "1", *TWO))
    assert "(--prior-path)" in error
    _said(here, error, "m.npy")


def test_a_csv_without_a_fraud_names_it_as_typed(here: Path) -> None:
    """The branch check's refusal (nothing to learn) names the file too."""
    _write_rows(here / "tx.csv", fraud_every=10_000)  # row 0 alone is a fraud
    text = (here / "tx.csv").read_text(encoding="utf-8").replace(",1\n", ",0\n")
    (here / "tx.csv").write_text(text, encoding="utf-8")
    error = one_line_error(
        simulate("--data", "csv", "--label", "is_fraud", "--path", "tx.csv", *TWO)
    )
    assert "tx.csv: the label 'is_fraud' has no positive (fraud) row" in error, error
    _said(here, error, "tx.csv")


def test_a_library_caller_is_named_by_the_path_it_gave(here: Path) -> None:
    """Outside ``secagg simulate`` nothing was written by a user: the readers name the
    path they were given, as before, and the statistics record the absolute origin."""
    from secagg.apps.models.tabular import load_labelled_csv
    from secagg.apps.simulation.config import shown_file
    from secagg.apps.simulation.feature_stats import load_public_statistics
    from secagg.errors import ConfigurationError

    absolute = str(here / "tx.csv")
    assert shown_file("path", absolute) == absolute
    _write_rows(here / "tx.csv")
    with pytest.raises(ConfigurationError, match="has no label column") as caught:
        load_labelled_csv(absolute, "no_such_column")
    assert str(caught.value).startswith(absolute)
    Path("s.json").write_text('{"features": {"amount": {"mean": 1, "std": 2}}}', encoding="utf-8")
    stats = load_public_statistics(here / "s.json", ["amount"], shown="s.json")
    assert stats.details["origin"] == str(here / "s.json")
    with pytest.raises(ConfigurationError, match=r"^s\.json has no statistics"):
        load_public_statistics(here / "s.json", ["age"], shown="s.json")
