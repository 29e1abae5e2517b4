"""The masking benchmark runs real rounds, checks their sums and reports every metric."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest
from _masking_bench import cheap_masking_measurements
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.apps.bench import floors, masking
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
    "unmasking_bound_cpu_seconds",
    "server_bound_cpu_seconds",
    "aes_ctr_bytes_per_cpu_second",
    "aes_ctr_floor_buffer_bytes",
    "add_bytes_per_cpu_second",
    "add_floor_buffer_bytes",
    "plaintext_float32_sum_cpu_seconds",
    "server_cpu_seconds",
    "server_vs_plaintext",
    "unmasking_vs_bound",
    "server_vs_bound",
    "x25519_agreement_cpu_seconds",
    "x25519_key_pair_cpu_seconds",
    "unmasking_x25519_key_pairs",
    "unmasking_x25519_agreements",
    "unmasking_x25519_floor_cpu_seconds",
    "unfused_least_cpu_seconds",
    "unfused_least_vs_aes_floor",
}


def _tiny(**overrides):
    """The benchmark on this file's tiny cell (N clients, D words), its machine
    measurements cheap (tests/_masking_bench.py says why nothing here needs them full)."""
    grid = {**masking.QUICK_GRID, "ns": (N,), "ds": (D,), **overrides}
    with cheap_masking_measurements():
        return masking.run_benchmark(**grid, progress=False)


@pytest.fixture(scope="module")
def quick_grid_with_slow_wall_clocks():
    """The quick grid's every graph and dropout on one tiny (n, d), run once for the tests
    that only read its cells; the PRG's and the addition's wall-clock figures are made
    absurdly slow (1 kB/s, 1 s an add): no verdict may use them, which
    test_the_unmasking_bound_is_the_in_cache_cpu_floor_not_a_slow_wall_clock_rate checks
    on these cells, and the other readers do not look at them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(masking, "_aes_rate", lambda d, seconds=0.3: 1e3)  # 1 kB/s
        patch.setattr(masking, "_add_seconds", lambda d, repeats=21: 1.0)  # 1 s an add
        result = _tiny()
    return json.loads(json.dumps(result))  # JSON-ready, and what the CLI prints


def test_quick_grid_on_a_tiny_cell_reports_correct_rounds_as_json(
    quick_grid_with_slow_wall_clocks,
):
    result = quick_grid_with_slow_wall_clocks
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


def test_the_least_unfused_server_adds_the_unmasking_x25519_to_the_bound(
    quick_grid_with_slow_wall_clocks,
):
    """The least server CPU of an unfused implementation is the server's bound plus the
    X25519 its unmasking cannot skip: one key pair per dropped client with a surviving
    neighbour and one agreement per pair mask, at the prices measured in the run."""
    for cell in quick_grid_with_slow_wall_clocks["cells"]:
        pair_masks = cell["unmasking_keystream_vectors"] - cell["included"]
        assert cell["unmasking_x25519_agreements"] == pair_masks
        assert 0 <= cell["unmasking_x25519_key_pairs"] <= cell["dropped"]
        assert (cell["unmasking_x25519_key_pairs"] == 0) == (pair_masks == 0)
        assert cell["x25519_agreement_cpu_seconds"] > 0 < cell["x25519_key_pair_cpu_seconds"]
        x25519 = (
            cell["unmasking_x25519_key_pairs"] * cell["x25519_key_pair_cpu_seconds"]
            + cell["unmasking_x25519_agreements"] * cell["x25519_agreement_cpu_seconds"]
        )
        assert cell["unmasking_x25519_floor_cpu_seconds"] == pytest.approx(x25519)
        least = cell["server_bound_cpu_seconds"] + x25519
        assert cell["unfused_least_cpu_seconds"] == pytest.approx(least)
        assert cell["unfused_least_vs_aes_floor"] == pytest.approx(
            least / cell["aes_floor_cpu_seconds"]
        )
        if cell["dropped"]:
            assert cell["unfused_least_cpu_seconds"] > cell["server_bound_cpu_seconds"]


def _aes_target_cell(**fields):
    return {
        "n": 1000,
        "d": 1_000_000,
        "graph": "harary",
        "dropout": 0.1,
        "default_parameters": True,
        "status": "complete",
        **fields,
    }


@pytest.mark.parametrize(
    ("least", "reachable"), [(1.34, False), (1.3, True), (1.2, True), (1.3000001, False)]
)
def test_the_aes_floor_target_says_whether_an_unfused_server_can_meet_it(least, reachable):
    cell = _aes_target_cell(server_cpu_vs_aes_floor=1.45, unfused_least_vs_aes_floor=least)
    (target,) = [t for t in masking._targets([cell]) if t["metric"] == "server_cpu_vs_aes_floor"]
    assert target["pass"] is False and target["value"] == 1.45
    assert target["least_reachable"] == {
        "field": "unfused_least_vs_aes_floor",
        "value": least,
        "reachable": reachable,
    }
    assert target["inputs"]["unfused_least_vs_aes_floor"] == least


def test_the_least_reachable_is_the_worst_matching_cells():
    """The target holds only if it can hold in every matching cell: the least reachable
    quoted is the largest over them, not the worst cell's by the measured metric."""
    cells = [
        _aes_target_cell(server_cpu_vs_aes_floor=1.6, unfused_least_vs_aes_floor=1.25),
        _aes_target_cell(server_cpu_vs_aes_floor=1.4, unfused_least_vs_aes_floor=1.35, repeat=1),
    ]
    (target,) = [t for t in masking._targets(cells) if t["metric"] == "server_cpu_vs_aes_floor"]
    assert target["value"] == 1.6
    assert target["least_reachable"]["value"] == 1.35
    assert target["least_reachable"]["reachable"] is False


def test_a_cell_without_the_least_field_quotes_no_least_reachable():
    """A JSON of an older run (no unfused_least_vs_aes_floor) is judged as before."""
    (target,) = [
        t
        for t in masking._targets([_aes_target_cell(server_cpu_vs_aes_floor=1.2)])
        if t["metric"] == "server_cpu_vs_aes_floor"
    ]
    assert target["pass"] is True and "least_reachable" not in target


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
    with cheap_masking_measurements():
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

    with cheap_masking_measurements():
        result = CliRunner().invoke(
            main,
            ["bench", "masking", "--n", "5", "--d", "500", "--dropout", "0", "--graph", "harary"],
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
    assert floors.aes_ctr_rate().bytes_per_cpu_second >= 0.7 * in_cache


def test_the_unmasking_bound_is_the_in_cache_cpu_floor_not_a_slow_wall_clock_rate(
    quick_grid_with_slow_wall_clocks,
):
    """The bound "unmasking <= 1.5x" is judged against is the keystream at AES's best rate.

    It was the PRG's wall-clock rate over a d-word buffer plus a cold d-word addition
    (6.4 GB/s and 13 GB/s at d = 1e6 on the 2026-12-04 Xeon host, against 9.75 GB/s and
    39-47 GB/s in cache), so the target passed at 0.6-0.8x a bound the server was above.
    Here (in the shared run) those wall-clock figures are made absurdly slow: a bound
    built from them grows without limit; the honest one does not move.
    """
    (cell,) = [
        c
        for c in quick_grid_with_slow_wall_clocks["cells"]
        if c["graph"] == "harary" and c["dropout"] == 0.1
    ]
    assert cell["aes_ctr_bytes_per_second"] == 1e3 and cell["add_seconds"] == 1.0
    keystream = cell["unmasking_keystream_bytes"]
    in_cache = keystream / _in_cache_aes_rate()  # the keystream at AES's rate in cache
    unmask_bound = cell["server_unmasking_cpu_seconds"] / cell["unmasking_vs_bound"]
    server_bound = cell["server_cpu_seconds"] / cell["server_vs_bound"]
    # AES and its addition in cache (the addition is the faster), with room for noise
    assert unmask_bound <= 4 * in_cache
    assert server_bound <= 4 * in_cache + cell["plaintext_float32_sum_cpu_seconds"]


def test_every_ratio_is_recomputable_from_the_cells_own_figures(
    quick_grid_with_slow_wall_clocks,
):
    """Each verdict's ratio is CPU time against floors of the same run, all in the JSON."""
    cells = quick_grid_with_slow_wall_clocks["cells"]  # with and without pair masks
    assert any(c["unmasking_keystream_vectors"] > c["included"] for c in cells)
    for c in cells:
        kb = c["unmasking_keystream_bytes"]
        assert kb == c["unmasking_keystream_vectors"] * D * 4
        aes = kb / c["aes_ctr_bytes_per_cpu_second"]
        bound = aes + kb / c["add_bytes_per_cpu_second"]
        plaintext = min(c["plaintext_float32_sum_cpu_seconds_runs"])
        assert c["plaintext_float32_sum_cpu_seconds"] == plaintext  # the best run, not the median
        assert c["server_unmasking_cpu_seconds"] == min(c["server_unmasking_cpu_seconds_runs"])
        assert c["server_sum_cpu_seconds"] == min(c["server_sum_cpu_seconds_runs"])
        server = (
            c["server_sum_cpu_seconds"]
            + c["server_close_cpu_seconds"]
            + c["server_unmasking_cpu_seconds"]
        )
        assert c["server_cpu_seconds"] == pytest.approx(server)
        assert c["aes_floor_cpu_seconds"] == pytest.approx(aes)
        assert c["unmasking_bound_cpu_seconds"] == pytest.approx(bound)
        assert c["server_bound_cpu_seconds"] == pytest.approx(bound + plaintext)
        assert c["server_cpu_vs_aes_floor"] == pytest.approx(server / aes)
        assert c["unmasking_vs_bound"] == pytest.approx(c["server_unmasking_cpu_seconds"] / bound)
        assert c["server_vs_bound"] == pytest.approx(server / (bound + plaintext))
        assert c["server_vs_plaintext"] == pytest.approx(server / plaintext)
        # the floors say where they were reached, and their rate at every buffer size
        for name in ("aes_ctr", "add"):
            by_size = c[f"{name}_floor_by_buffer_bytes"]
            best = c[
                f"{name}_bytes_per_cpu_second" if name == "aes_ctr" else "add_bytes_per_cpu_second"
            ]
            assert best == max(by_size.values())
            assert by_size[str(c[f"{name}_floor_buffer_bytes"])] == best


def test_a_target_quotes_its_worst_cell_and_the_figures_to_recheck_it():
    where = {"n": 1000, "d": 1_000_000, "graph": "harary", "default_parameters": True}
    common = {**where, "status": "complete", "repeat": 0, "k": 36, "threshold": 19}
    fields = {
        "server_unmasking_cpu_seconds": 2.0,
        "server_unmasking_cpu_seconds_runs": [2.0, 2.1],
        "unmasking_keystream_bytes": 16 * 10**9,
        "aes_ctr_bytes_per_cpu_second": 10 * 10**9,
        "aes_ctr_floor_buffer_bytes": 256 << 10,
        "add_bytes_per_cpu_second": 40 * 10**9,
        "add_floor_buffer_bytes": 64 << 10,
        "unmasking_bound_cpu_seconds": 1.6 + 0.4,
    }
    calm = {**common, **fields, "dropout": 0.1, "unmasking_vs_bound": 1.0}
    slow = {**calm, "server_unmasking_cpu_seconds": 3.2, "unmasking_vs_bound": 1.6, "repeat": 1}
    targets = [t for t in masking._targets([calm, slow]) if t["metric"] == "unmasking_vs_bound"]
    (target,) = [t for t in targets if "n=1000" in t["target"]]
    assert target["value"] == 1.6 and target["pass"] is False  # 1.6 > 1.5: the worst cell fails
    assert target["worst_cell"]["repeat"] == 1
    inputs = target["inputs"]
    assert inputs["server_unmasking_cpu_seconds"] / inputs["unmasking_bound_cpu_seconds"] == 1.6
    kb = inputs["unmasking_keystream_bytes"]
    recomputed = (
        kb / inputs["aes_ctr_bytes_per_cpu_second"] + kb / inputs["add_bytes_per_cpu_second"]
    )
    assert recomputed == pytest.approx(inputs["unmasking_bound_cpu_seconds"])
    (calm_only,) = [
        t
        for t in masking._targets([calm])
        if t["metric"] == "unmasking_vs_bound" and "n=1000" in t["target"]
    ]
    assert calm_only["pass"] is True and calm_only["value"] == 1.0


def _cell_at_every_limit() -> list[dict]:
    """One complete cell per target check whose metric sits exactly at the target's limit."""
    cells = []
    for check in masking._TARGET_CHECKS:
        where, metric, limit = check[1], check[2], check[3]
        cell = {"status": "complete", "n": 0, "d": 0, "graph": "harary", "dropout": 0.0, **where}
        cells.append({**cell, "default_parameters": True, metric: limit})
    return cells


def test_a_strict_target_fails_at_its_limit_and_a_non_strict_one_passes_there():
    """'< 1 GB' and '< 0.5 s' are not met by 1e9 bytes or 0.5 s; '<= 4x' is met by 4x.

    Every check used to be ``<=``: a server peak of exactly 1e9 bytes passed '< 1 GB'."""
    verdicts = {}
    for cell in _cell_at_every_limit():
        for target in masking._targets([cell]):
            if target["value"] == target["limit"]:
                verdicts[target["target"]] = target["pass"]
    assert len(verdicts) == len(masking._TARGET_CHECKS)
    memory = [v for name, v in verdicts.items() if "peak memory" in name]
    masking_time = [v for name, v in verdicts.items() if "client masking < 0.5 s" in name]
    ratios = [v for name, v in verdicts.items() if "<=" in name]
    assert memory and not any(memory)
    assert masking_time and not any(masking_time)
    assert ratios and all(ratios)
    just_under = {**_cell_at_every_limit()[-1], "client_masking_seconds_max": 0.4999}
    assert all(t["pass"] for t in masking._targets([just_under]) if "slowest" in t["target"])


def test_each_target_checks_the_comparison_its_statement_makes():
    for name, _, _, limit, comparison in masking._TARGET_CHECKS:
        stated = "<=" if " <= " in name else "<" if " < " in name else None
        assert stated == comparison, name
        assert masking.within(limit, comparison, limit) is (comparison == "<=")
        assert masking.within(limit * 0.999, comparison, limit) is True
        assert masking.within(limit * 1.001, comparison, limit) is False
    with pytest.raises(ValueError, match="comparison"):
        masking.within(1.0, "=<", 2.0)


def test_the_growth_slope_target_is_met_at_its_limit_and_says_how_it_compares():
    cells = [
        {
            "status": "complete",
            "default_parameters": True,
            "d": 100_000,
            "graph": "harary",
            "dropout": 0.1,
            "n": n,
            "server_cpu_seconds": (n / 1000) ** masking.TARGETS["server_cpu_slope"],
        }
        for n in (1000, 10_000)
    ]
    (growth,) = masking.growth_slopes(cells)
    assert growth["server_cpu_slope"] == pytest.approx(1.2)
    assert growth["comparison"] == "<="
    steeper = [{**c, "server_cpu_seconds": (c["n"] / 1000) ** 1.3} for c in cells]
    assert masking.growth_slopes(steeper)[0]["pass"] is False
