"""``secagg bench papers`` writes the papers' figures: checked rounds, plots, a report.

The test suite's smoke grid (hidden flag ``--smoke``: the quick grid's axes, smaller)
runs once for the module (through the CLI, as a user would) and every test reads its
output; ``--quick`` itself cost the module about 25 s, for checks of the output's
shape and the verdicts' logic that no grid size changes. Nothing here compares times:
the properties checked are shapes the protocol must have whatever the machine, on the
work counts each cell records beside its times (masks expanded, neighbours).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from secagg.apps.bench import papers
from secagg.apps.cli import main
from secagg.protocol import ServerPhase

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("papers")
    result = CliRunner().invoke(main, ["bench", "papers", "--smoke", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "papers.json").read_text(encoding="utf-8"))
    report = (out / "papers.md").read_text(encoding="utf-8")
    return out, data, report


def _cells(data: dict[str, Any], **where: Any) -> list[dict[str, Any]]:
    return [c for c in data["cells"] if all(c[k] == v for k, v in where.items())]


def test_json_has_every_figure_and_every_round_was_correct(run):
    _, data, _ = run
    assert data["benchmark"] == "papers"
    assert data["quick"] is True and data["smoke"] is True
    assert {"machine", "grid", "method", "papers", "cells", "neighbour_curves"} <= set(data)
    assert data["machine"]["cpu_model"]
    assert data["machine"]["cpus"] >= 1
    figures = {c["figure"] for c in data["cells"]}
    assert figures == {"b17_n", "b17_d", "b20_harary", "b20_complete"}
    grid = papers.SMOKE
    expected = (len(grid.b17_ns) + len(grid.b17_ds)) * len(grid.b17_dropouts) + (
        len(grid.b20_ns) + len(grid.b20_complete_ns)
    ) * len(grid.b20_dropouts)
    assert len(data["cells"]) == expected
    for cell in data["cells"]:
        assert cell["correct"] is True  # the secure sum equalled numpy's modular sum
        assert cell["dropped"] == math.floor(cell["dropout"] * cell["n"] + 1e-9)
        assert cell["included"] == cell["n"] - cell["dropped"]
        assert cell["client_cpu_seconds_mean"] > 0
        assert cell["server_cpu_seconds"] > 0
    for cell in _cells(data, graph="complete"):
        assert cell["k"] == cell["n"] - 1
    for cell in _cells(data, figure="b20_harary"):
        assert cell["graph"] == "harary"
        assert cell["k"] < cell["n"] - 1
    rows = data["comparison"]["rows"]
    assert {r["figure"] for r in rows} >= {
        "b17_client_vs_n",
        "b17_client_vs_d",
        "b17_server_vs_n",
        "b17_server_vs_d",
        "b17_dropout_ratio",
        "b20_neighbours_vs_n",
        "b20_client_vs_n",
        "b20_server_vs_n",
    }
    for row in rows:
        assert row["paper_status"] in {"verified", "recalled", "trend only"}
        assert row["verdict"] in {"agrees", "differs", "see note", "n/a"}


def test_every_slope_verdict_is_rechecked_from_the_json_alone(run):
    """A slope's verdict is this run's measured slope against the paper's, within the
    tolerance the row states: nothing in it is fixed in advance."""
    _, data, _ = run
    judged = [r for r in data["comparison"]["rows"] if r["verdict"] in {"agrees", "differs"}]
    assert judged
    for row in judged:
        close = abs(row["ours_upper_half"] - row["paper"]) <= row["tolerance"]
        assert row["verdict"] == ("agrees" if close else "differs"), row["quantity"]


def test_png_plots_exist_and_are_valid(run):
    out, _, report = run
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} == {
        "bonawitz2017_fig5_client.png",
        "bonawitz2017_fig6_server.png",
        "bonawitz2017_table2_dropout.png",
        "bell2020_neighbours.png",
        "bell2020_cost.png",
    }
    import matplotlib.image

    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert f"]({png.name})" in report  # the report shows every plot


def test_report_names_the_machine_and_the_papers_figures(run):
    _, data, report = run
    assert data["machine"]["cpu_model"] in report
    assert f"Python {data['machine']['python']}" in report
    assert f"numpy {data['machine']['numpy']}" in report
    for label in ("Fig. 5(a)", "Fig. 5(b)", "Fig. 6(a)", "Fig. 6(b)", "Table 2"):
        assert label in report
    assert "Bonawitz et al. 2017" in report and "Bell et al. 2020" in report
    assert "10.1145/3133956.3133982" in report and "10.1145/3372297.3417885" in report


def test_secagg_server_cost_grows_with_dropout(run):
    """Dropouts make the server rebuild a pair mask per (dropped, survivor): more work."""
    _, data, _ = run
    n_max = max(papers.SMOKE.b17_ns)
    by_dropout = {c["dropout"]: c for c in _cells(data, figure="b17_n", n=n_max)}
    low, high = min(by_dropout), max(by_dropout)
    survivors = by_dropout[low]["included"]
    # no dropout: one self-mask per survivor; with dropouts, also a pair mask per
    # (dropped, surviving neighbour): on the complete graph, every survivor
    assert by_dropout[low]["server_keystream_vectors"] == survivors
    high_cell = by_dropout[high]
    assert high_cell["server_keystream_vectors"] == high_cell["included"] * (
        1 + high_cell["dropped"]
    )
    assert high_cell["server_keystream_vectors"] > survivors


def test_neighbour_count_grows_sublinearly_and_matches_fcp(run):
    _, data, _ = run
    curves = data["neighbour_curves"]
    assert len(curves) == len(papers.SMOKE.k_settings)
    for curve in curves:
        assert curve["slope_loglog"] is not None
        assert curve["slope_loglog"] < 0.5  # k = O(log n), far from the complete graph's 1
        ks = [p["k"] for p in curve["points"]]
        assert ks == sorted(ks)  # never fewer neighbours for more clients
        if curve["fcp_vectors"]:
            assert curve["fcp_vectors_matched"] is True


def test_secagg_plus_client_is_cheaper_than_secagg_at_equal_n(run):
    _, data, _ = run
    shared = sorted(set(papers.SMOKE.b20_ns) & set(papers.SMOKE.b20_complete_ns))
    assert shared
    n = shared[-1]
    plus = _cells(data, figure="b20_harary", n=n, dropout=0.0)[0]
    full = _cells(data, figure="b20_complete", n=n, dropout=0.0)[0]
    assert plus["k"] < full["k"] == n - 1
    assert plus["client_keystream_vectors"] == plus["k"] + 1 < full["client_keystream_vectors"]


def test_loglog_slope_recovers_exponents():
    xs = [10, 100, 1000]
    assert papers.loglog_slope(xs, [x**2 for x in xs]) == pytest.approx(2.0)
    assert papers.loglog_slope(xs, [5.0 for _ in xs]) == pytest.approx(0.0, abs=1e-12)
    assert papers.loglog_slope([10], [1.0]) is None


@pytest.mark.parametrize(
    ("flags", "grid"),
    [
        ([], "FULL"),
        (["--quick"], "QUICK"),
        (["--smoke"], "SMOKE"),
        (["--quick", "--smoke"], "SMOKE"),
    ],
)
def test_each_flag_runs_its_grid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: list[str], grid: str
) -> None:
    """``--quick`` runs the quick grid its documented figures come from, not the smoke
    grid the module above runs (nothing is measured: the run stops at its grid)."""
    from secagg.apps.bench.masking import BenchmarkError

    ran: list[papers.PaperGrid] = []

    def stop(chosen: papers.PaperGrid, progress: bool = True) -> dict[str, Any]:
        ran.append(chosen)
        raise BenchmarkError("stopped by the test")

    monkeypatch.setattr(papers, "run_papers", stop)
    result = CliRunner().invoke(main, ["bench", "papers", *flags, "--out", str(tmp_path)])
    assert "stopped by the test" in result.output
    assert ran == [getattr(papers, grid)]


def test_the_smoke_grid_is_hidden_and_smaller_than_the_quick_one() -> None:
    result = CliRunner().invoke(main, ["bench", "papers", "--help"])
    assert "--quick" in result.output and "--smoke" not in result.output
    assert max(papers.SMOKE.b17_ns) < max(papers.QUICK.b17_ns)
    assert papers.SMOKE.b17_d < papers.QUICK.b17_d
    assert max(papers.SMOKE.b20_ns) < max(papers.QUICK.b20_ns)


def test_replays_copy_only_the_survivors_and_the_last_uses_the_recorded_clients() -> None:
    """Each dropout level replays one recorded round: the levels before the last answer
    the unmasking with deep copies of the survivors only (the dropped get no request),
    and the last with the recorded clients themselves, since nothing replays after it.
    Every level still sums exactly. Before 2026-12-06 every level deep-copied all n."""
    n = 10
    words = papers._random_floats(n, 8).view(np.uint32)
    run = papers._run_clients(n, 8, "complete", papers.B17_TOLERATED_DROPOUT, words)
    recorded = list(run.prep.clients)
    phases = [client.phase for client in recorded]

    copied = papers._answering_clients(recorded, [0, 2, 5], last=False)
    assert sorted(copied) == [0, 2, 5]
    assert all(copied[p] is not recorded[p] for p in copied)
    used = papers._answering_clients(recorded, [1, 3], last=True)
    assert all(used[p] is recorded[p] for p in used)

    for dropped, last in (({3, 7}, False), ({1}, False), ({4, 8, 9}, True)):
        server, _, unmask_cpu = papers._replay(run, dropped, last=last)
        assert server.phase == ServerPhase.COMPLETE
        included = sorted(server.report.included)
        assert included == sorted(set(range(n)) - dropped)
        assert np.array_equal(server.result(), papers._modular_sum(words, included))
        assert all(unmask_cpu[p] > 0 for p in included)
        if not last:  # the recorded clients are as they were: the next level needs them
            assert [client.phase for client in recorded] == phases
    assert [client.phase for client in recorded] != phases  # the last level used them


def _state(client: Any) -> dict[str, Any]:
    """What a client holds, taken so that a change in place shows: arrays and containers
    copied one level, anything else by identity."""
    taken: dict[str, Any] = {}
    for name, value in vars(client).items():
        if isinstance(value, np.ndarray):
            taken[name] = value.copy()
        elif isinstance(value, dict | list | set):
            taken[name] = copy.copy(value)
        else:
            taken[name] = value
    return taken


def _unchanged(before: dict[str, Any], client: Any) -> list[str]:
    now = vars(client)
    changed = [name for name in before.keys() ^ now.keys()]
    for name, value in before.items():
        if name not in now:
            continue
        if isinstance(value, np.ndarray):
            same = np.array_equal(value, now[name])
        elif isinstance(value, dict | list | set):
            same = value == now[name]
        else:
            same = value is now[name]
        if not same:
            changed.append(name)
    return changed


def test_answering_with_a_shallow_copy_leaves_the_recorded_client_as_it_was() -> None:
    """The replays before the last answer with shallow copies (``copy.copy``), not deep
    ones: answering an unmasking request only rebinds a client's attributes, so the
    recorded client, whose keys and shares the copy shares, is left exactly as it was
    and the next level replays the same round (about 1 s of ``--quick``'s CPU saved)."""
    n = 8
    words = papers._random_floats(n, 8).view(np.uint32)
    run = papers._run_clients(n, 8, "complete", papers.B17_TOLERATED_DROPOUT, words)
    recorded = list(run.prep.clients)
    copied = papers._answering_clients(recorded, [0, 1], last=False)
    assert all(vars(copied[p])[k] is v for p in copied for k, v in vars(recorded[p]).items())
    before = [_state(client) for client in recorded]
    for dropped in ({2}, {5, 6}, set()):
        server, _, _ = papers._replay(run, dropped, last=False)
        assert server.phase == ServerPhase.COMPLETE
        assert [_unchanged(b, c) for b, c in zip(before, recorded, strict=True)] == [[]] * n
