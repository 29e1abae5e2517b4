"""The masking benchmark runs real rounds, checks their sums and reports every metric."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.apps.bench import masking
from secagg.protocol import Server

N, D = 10, 1000

METRICS = {
    "n",
    "d",
    "graph",
    "k",
    "threshold",
    "dropout",
    "dropped",
    "included",
    "correct",
    "client_masking_seconds_median",
    "server_sum_seconds",
    "server_unmasking_seconds",
    "server_total_seconds",
    "server_peak_bytes",
    "plaintext_float32_sum_seconds",
    "aes_ctr_bytes_per_second",
    "unmasking_keystream_vectors",
    "unmasking_bound_seconds",
    "server_vs_plaintext",
    "unmasking_vs_bound",
    "server_vs_bound",
}


def _tiny(**overrides):
    grid = {**masking.QUICK_GRID, "ns": (N,), "ds": (D,), **overrides}
    return masking.run_benchmark(**grid, progress=False)


def test_quick_grid_on_a_tiny_cell_reports_correct_rounds_as_json():
    result = json.loads(json.dumps(_tiny()))  # JSON-ready, and what the CLI prints
    assert result["benchmark"] == "masking"
    assert {"machine", "grid", "definitions", "memory_method", "cells", "targets"} <= set(result)
    assert result["machine"]["cpus"] >= 1
    cells = result["cells"]
    assert len(cells) == len(masking.QUICK_GRID["graphs"]) * len(masking.QUICK_GRID["dropouts"])
    for cell in cells:
        assert cell["status"] == "complete"
        assert cell["correct"] is True  # the secure sum equalled numpy's sum of the same words
        assert METRICS <= set(cell)
        assert cell["dropped"] == math.floor(cell["dropout"] * N + 1e-9)
        assert cell["included"] == N - cell["dropped"]
        assert cell["server_peak_bytes"] >= D * 4  # at least the accumulator
        parts = cell["server_sum_seconds"] + cell["server_close_seconds"]
        assert cell["server_total_seconds"] == pytest.approx(
            parts + cell["server_unmasking_seconds"]
        )
        if cell["dropped"]:  # the server expands pair masks as well as self-masks
            assert cell["unmasking_keystream_vectors"] > cell["included"]
        else:
            assert cell["unmasking_keystream_vectors"] == N
    assert result["targets"] == []  # no target cell (n=100/1000, d=1e6) in this grid
    table = masking.markdown_table(result)
    assert table.count("\n") == 2 + len(cells)


def test_a_wrong_secure_sum_makes_the_benchmark_fail(monkeypatch):
    honest = Server.result

    def off_by_one(self):
        return honest(self) + np.uint32(1)

    monkeypatch.setattr(Server, "result", off_by_one)
    with pytest.raises(masking.BenchmarkError, match="wrong secure sum"):
        _tiny(dropouts=(0.0,), graphs=("harary",))


def test_targets_report_measured_ratio_and_verdict():
    cell = {
        "n": 100,
        "d": 1_000_000,
        "graph": "harary",
        "dropout": 0.0,
        "default_parameters": True,
        "status": "complete",
        "server_vs_plaintext": 2.0,
    }
    (target,) = masking._targets([cell])
    assert target["value"] == 2.0 and target["ratio_to_limit"] == 0.5 and target["pass"] is True
    (aborted,) = masking._targets([{**cell, "status": "aborted"}])
    assert aborted["pass"] is False and aborted["value"] is None


def test_script_entry_point_prints_only_json_on_stdout(capsys, tmp_path):
    out = tmp_path / "bench.json"
    masking.main(
        ["--n", "6", "--d", "500", "--dropout", "0.3", "--graph", "harary", "--out", str(out)]
    )
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report == json.loads(out.read_text())
    assert len(report["cells"]) == 1 and report["cells"][0]["dropped"] == 1
    assert "dropout=0.3" in captured.err  # progress goes to stderr


def test_cli_prints_the_benchmark_json():
    from secagg.apps.cli import main

    result = CliRunner().invoke(
        main, ["bench", "masking", "--n", "5", "--d", "500", "--dropout", "0", "--graph", "harary"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["benchmark"] == "masking" and len(report["cells"]) == 1
    assert report["cells"][0]["correct"] is True


def _in_cache_aes_rate(size: int = 256 << 10, calls: int = 256, runs: int = 5) -> float:
    """AES-128-CTR bytes per CPU second over one cache-sized buffer, best of ``runs``."""
    source, sink = bytearray(size), bytearray(size)
    best = 0.0
    for _ in range(runs):
        stream = Cipher(algorithms.AES(os.urandom(16)), modes.CTR(bytes(16))).encryptor()
        cpu = time.process_time()
        for _ in range(calls):
            stream.update_into(source, sink)
        best = max(best, calls * size / max(time.process_time() - cpu, 1e-9))
    return best


def test_the_aes_floor_is_the_fastest_rate_not_the_speed_of_memory():
    """The floor the server is held to is AES at its fastest on this core.

    One call over 64 MiB alone ran at the speed of RAM on a host with little memory
    bandwidth (3.4 GB/s against 9.7 GB/s in cache), and the benchmark then reported
    the server at 0.59 times a floor it was really 1.65 times above. Both figures are
    CPU time and best-of, so a busy machine moves them alike; the factor 0.7 leaves
    room for noise, not for the 2.8 times of that defect.
    """
    in_cache = _in_cache_aes_rate()
    assert masking._aes_cpu_rate() >= 0.7 * in_cache
