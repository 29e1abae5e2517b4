"""The active-variant benchmark runs both variants and reports them side by side (smoke test)."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest
from _benchmarks import benchmark_script


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("bench_active") as module:
        yield module


@pytest.fixture(scope="module")
def smallest_quick_run(bench, tmp_path_factory):
    """The smallest quick run (one n, one repetition of everything), once for the module:
    its printed JSON and its ``--out`` file. The Markdown test reads the same file (it
    ran a second benchmark of its own, a second of the file's six)."""
    out = tmp_path_factory.mktemp("active") / "active.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        bench.main(
            [
                "--quick",
                "--n",
                "10",
                "--repeats",
                "1",
                "--runtime-repeats",
                "1",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
    return printed.getvalue(), out


def test_smallest_quick_run_prints_the_json_of_both_variants(bench, smallest_quick_run):
    text, out = smallest_quick_run
    printed = json.loads(text)
    result = json.loads(out.read_text())
    assert printed == result
    assert result["benchmark"] == "active"
    assert {"machine", "git", "grid", "definitions", "notes", "protocol", "runtime"} <= set(result)
    assert result["machine"]["cpus"] >= 1 and result["machine"]["python"]
    assert result["grid"]["clock"] == "cpu"  # a shared machine's load lengthens wall time

    cells = result["protocol"]
    assert {(c["graph"], c["dropout"]) for c in cells} == {
        (g, p) for g in ("harary", "complete") for p in (0.0, 0.05)
    }
    for cell in cells:
        assert cell["n"] == 10 and cell["d"] == bench.QUICK_GRID["d"]
        assert cell["dropped"] == (1 if cell["dropout"] else 0)
        passive, active = cell["passive"], cell["active"]
        for variant in (passive, active):
            assert set(bench.SUMMARY_KEYS) <= set(variant)
            assert variant["round_seconds"] > 0 and variant["server_seconds"] > 0
            assert 1 <= variant["t"] <= variant["k"] + 1
        # the active variant is sized for the worst placement of colluders...
        assert active["k"] >= passive["k"] and active["t"] >= passive["t"]
        # ...and does strictly more: signatures and the consistency round
        assert "consistency_check" in active["server_phase_seconds"]
        assert "consistency_check" not in passive["server_phase_seconds"]
        assert "ConsistencySignature" in active["upload_bytes_by_message"]
        for key in ("client_sent_bytes", "server_sent_bytes", "server_received_bytes"):
            assert active[key] > passive[key], key
            assert cell["active_vs_passive"][key] > 1
        assert set(cell["active_vs_passive"]) == set(bench.RATIO_KEYS)
        assert set(cell["active_vs_passive_paired"]) == set(bench.PAIRED_KEYS)
        assert set(cell["active_vs_passive_best"]) == set(bench.BEST_KEYS)
        for variant in (passive, active):  # one repetition: its best is its median
            assert variant["best"] == {key: variant[key] for key in bench.BEST_KEYS}

    runtime = result["runtime"]
    assert runtime["clients"] == bench.QUICK_GRID["runtime_clients"]
    for variant in ("passive", "active"):
        rounds = runtime[variant]["rounds"]
        assert len(rounds) == bench.QUICK_GRID["runtime_rounds"]
        assert all(row["seconds"] > 0 and row["cpu_seconds"] > 0 for row in rounds)
        assert runtime[variant]["k"] is not None and runtime[variant]["t"] is not None
    assert runtime["active"]["server_sent_bytes"] > runtime["passive"]["server_sent_bytes"]
    assert runtime["active_vs_passive"]["round_seconds"] > 0


def test_markdown_table_of_a_run(bench, smallest_quick_run, capsys):
    _, out = smallest_quick_run
    bench.main(["--markdown", str(out)])
    table = capsys.readouterr().out
    assert "| 10 | harary | 0% |" in table and "| 10 | complete | 5% |" in table
    assert "active / passive" in table


def test_the_recorded_commit_is_the_one_the_run_started_on(bench, monkeypatch):
    """The run records the commit and tree state it started with: a commit made while a
    run of minutes goes on is not the code that ran."""
    states = iter(["started-on", "committed-meanwhile"])
    monkeypatch.setattr(bench, "git_info", lambda: {"commit": next(states)})

    def cell(*args, **kwargs):
        bench.git_info()  # the tree changes while the cells run
        return {}

    monkeypatch.setattr(bench, "protocol_cell", cell)
    monkeypatch.setattr(bench, "runtime_benchmark", lambda *args: {})
    grid = {**bench.QUICK_GRID, "ns": (10,), "graphs": ("harary",), "dropouts": (0.0,)}
    result = bench.run_benchmark(grid, progress=False)
    assert result["git"] == {"commit": "started-on"}


@pytest.mark.parametrize("flag", ["--repeats", "--runtime-repeats"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_a_repetition_count_below_one_is_one_line_naming_the_flag(
    bench, flag, value, capsys, monkeypatch
):
    """``--repeats 0`` (its help said ">= 1") ran the setup, then ended in
    ``StatisticsError: no median for empty data``; argparse now refuses it first."""

    def no_run(grid, progress=True):
        raise AssertionError(f"ran with {flag} {value}")

    monkeypatch.setattr(bench, "run_benchmark", no_run)
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--quick", flag, value])
    assert stopped.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert flag in last, last


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--n", "2"),  # ConfigurationError: no threshold is private for 2 clients
        ("--n", "0"),
        ("--d", "0"),  # ConfigurationError: vector_length must be positive
        ("--dropout", "nan"),  # ValueError from the seeding
        ("--dropout", "inf"),  # OverflowError
        ("--dropout", "1.5"),  # a larger sample than the population
        ("--dropout", "-0.1"),
        ("--runtime-clients", "2"),
        ("--runtime-d", "0"),
        ("--runtime-rounds", "0"),
        ("--runtime-rounds", "10001"),
    ],
)
def test_a_count_or_share_out_of_range_is_one_line_naming_the_flag(
    bench, flag, value, capsys, monkeypatch
):
    """Each was a traceback from the cell's planning or seeding, after the setup; the
    parser now refuses it first (exit 2), before any round."""

    def no_run(grid, progress=True):
        raise AssertionError(f"ran with {flag} {value}")

    monkeypatch.setattr(bench, "run_benchmark", no_run)
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--quick", flag, value])
    assert stopped.value.code == 2
    said = capsys.readouterr()
    assert said.out == ""
    assert f"argument {flag}:" in said.err.splitlines()[-1], said.err


def test_the_json_is_strict_whatever_a_figure_is(bench, tmp_path, capsys, monkeypatch):
    """A ratio a later change makes non-finite goes out as ``"inf"`` / ``null``, on
    stdout and in ``--out`` alike: the script printed ``json.dumps``'s bare ``NaN`` and
    ``Infinity``, which strict readers (``jq``, ``JSON.parse``) refuse."""
    from secagg.apps.json_output import loads

    figures = {"ratio": math.inf, "slower": -math.inf, "missing": math.nan, "n": [10]}
    monkeypatch.setattr(
        bench, "run_benchmark", lambda grid, progress=True: {"notes": [], **figures}
    )
    out = tmp_path / "active.json"
    bench.main(["--quick", "--no-progress", "--out", str(out)])
    expected = {"notes": [], "ratio": "inf", "slower": "-inf", "missing": None, "n": [10]}
    assert loads(capsys.readouterr().out) == expected
    assert loads(out.read_text()) == expected


def test_a_round_that_fails_its_checks_is_one_line_exit_1(bench, capsys, monkeypatch):
    """``--n 3 --dropout 0.3``: the round aborts (2 of 3 answer, threshold 3); that was a
    BenchmarkError traceback."""

    def aborted(grid, progress=True):
        raise bench.BenchmarkError("round aborted: 2 clients answered in masked_input,\nbelow 3")

    monkeypatch.setattr(bench, "run_benchmark", aborted)
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--quick", "--no-progress"])
    assert stopped.value.code == 1
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err.splitlines() == [
        "bench_active.py: round aborted: 2 clients answered in masked_input, below 3"
    ]
