"""The masking benchmark runs real rounds, checks their sums and reports every metric."""

from __future__ import annotations

import json

from click.testing import CliRunner

from secagg.bench.masking import markdown_table, run_benchmark
from secagg.cli import main

METRICS = {
    "client_masking_seconds_median",
    "server_total_seconds",
    "server_unmasking_seconds",
    "server_peak_bytes",
    "plaintext_float32_sum_seconds",
    "aes_ctr_bytes_per_second",
    "unmasking_bound_seconds",
    "server_vs_plaintext",
    "unmasking_vs_bound",
}


def test_small_grid_reports_every_metric_for_correct_rounds():
    result = run_benchmark(
        ns=(10,), ds=(2000,), dropouts=(0.0, 0.1), graphs=("complete", "harary"), progress=False
    )
    cells = result["cells"]
    assert len(cells) == 4
    for cell in cells:
        assert cell["status"] == "complete" and cell["correct"] is True
        assert METRICS <= set(cell)
        assert cell["server_peak_bytes"] >= 2000 * 4  # at least the accumulator
        assert cell["included"] == 10 - cell["dropped"]
    dropped = [c for c in cells if c["dropout"] == 0.1]
    assert all(c["dropped"] == 1 for c in dropped)
    # with dropouts the server expands pair masks as well as self-masks
    assert all(c["unmasking_keystream_vectors"] > c["included"] for c in dropped)
    table = markdown_table(result)
    assert table.count("\n") == 2 + len(cells)
    assert "| 10 | 2,000 | harary |" in table


def test_cli_prints_the_benchmark_json():
    out = CliRunner().invoke(
        main, ["bench", "masking", "--n", "5", "--d", "500", "--dropout", "0", "--graph", "harary"]
    )
    assert out.exit_code == 0, out.output
    start = out.output.index("{")
    report = json.loads(out.output[start:])
    assert report["benchmark"] == "masking" and len(report["cells"]) == 1
