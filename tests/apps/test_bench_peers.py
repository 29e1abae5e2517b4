"""The peer benchmark (benchmarks/peers/) runs both systems and checks their sums (smoke test).

Flower is the optional extra ``secagg[peers]``. CI installs it (``.ci/run``), so
a missing Flower fails this test with the install line instead of skipping it:
a skipped test would let the side-by-side comparison rot unnoticed.
No timing is asserted: the figures depend on the machine and its load.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "peers" / "run.py"
STAGES = ["setup", "share_keys", "collect_masked_vectors", "unmask"]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    if importlib.util.find_spec("flwr") is None:
        pytest.fail('Flower is not installed: pip install -e ".[peers]" (CI installs it)')
    out = tmp_path_factory.mktemp("peers")
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((out / "peers.json").read_text())
    markdown = (out / "peers.md").read_text()
    return result, markdown, proc.stdout


def test_quick_run_writes_json_and_prints_the_markdown(quick_run):
    result, markdown, printed = quick_run
    assert printed == markdown
    assert result["benchmark"] == "peers"
    assert {"machine", "definitions", "method", "cells", "ckks", "seconds"} <= set(result)
    machine = result["machine"]
    assert machine["cpus"] >= 1 and machine["cpu_model"]
    assert machine["versions"]["flwr"] == "1.42.0"
    assert "Flower / ours" in markdown and "CKKS" in markdown


def test_both_systems_ran_the_same_round_and_both_sums_matched(quick_run):
    result, _, _ = quick_run
    (cell,) = result["cells"]
    assert cell["all_correct"] is True
    assert len(cell["pairs"]) == 1
    pair = cell["pairs"][0]
    assert pair["order"] == ["flower", "ours"]
    flower, ours = pair["flower"], pair["ours"]
    # the same data and the same dropped clients, the same k and t
    assert flower["seed"] == ours["seed"] and flower["dropped"] == ours["dropped"]
    n = cell["cell"]["n"]
    assert len(ours["dropped"]) == int(cell["cell"]["dropout"] * n) == 1
    assert flower["flower_parameters"]["num_shares"] == cell["cell"]["k"] + 1
    assert flower["flower_parameters"]["reconstruction_threshold"] == cell["cell"]["t"]
    assert ours["our_parameters"]["k"] == cell["cell"]["k"]
    assert ours["our_parameters"]["threshold"] == cell["cell"]["t"]
    for record in (flower, ours):
        check = record["correctness"]
        assert check["matches"] is True
        assert check["max_abs_error"] <= check["tolerance"]
        assert check["included"] == record["survivors"] == n - 1
        assert [s["stage"] for s in record["stages"]] == STAGES
        # the dropped client answered the first two stages only
        assert [s["replies"] for s in record["stages"]] == [n, n, n - 1, n - 1]
        for key in ("round_cpu", "server_cpu", "clients_cpu", "serde_cpu", "round_wall"):
            assert record[key] > 0, key
        assert record["bytes_up_per_parameter"] > 0
        assert record["load_1min_before"] >= 0 and record["process_cpu"] > 0
    assert ours["correctness"]["exact_sum_matches"] is True
    # Flower uploads int64 masked values, ours 32-bit words
    assert flower["bytes_up_per_parameter"] > ours["bytes_up_per_parameter"] >= 4
    assert set(cell["ratios"]) >= {
        "round_cpu",
        "round_wall",
        "server_cpu",
        "bytes_up_per_parameter",
    }


def test_the_floor_is_our_counted_work_at_prices_measured_in_the_same_run(quick_run):
    """The round's floor was hand arithmetic in the docs, from primitive rates measured on
    other days (AES by the memory-bound method on one host). Now the run counts our
    round's X25519 and AES work as it happens and prices it at rates it measures itself,
    so every "x the floor" in peers.json can be rechecked from the JSON alone."""
    result, markdown, _ = quick_run
    prices = result["primitive_prices"]
    assert 0 < prices["x25519_agreement_cpu_seconds"] < 1e-3
    assert 0 < prices["x25519_key_pair_cpu_seconds"] < 1e-3
    rates = prices["aes_ctr_floor_by_buffer_bytes"]
    assert prices["aes_ctr_bytes_per_cpu_second"] == max(rates.values())
    (cell,) = result["cells"]
    c = cell["cell"]
    n, k, d = c["n"], c["k"], c["d"]
    survivors = n - int(c["dropout"] * n)
    for pair in cell["pairs"]:
        work = pair["ours"]["crypto_work"]
        # every client makes two key pairs; the server rebuilds each dropped client's once
        assert work["x25519_key_pairs"] == 2 * n + (n - survivors)
        # two agreements per neighbour per client, and at most k for each dropped
        # client's surviving neighbours (the server's low-order check is a table lookup)
        assert 2 * k * n < work["x25519_agreements"] <= 2 * k * n + (n - survivors) * k
        # each survivor: k + 1 masks of d words and d rounding words of 8 bytes; the
        # server: at least one self-mask per survivor
        least = survivors * ((k + 1) * 4 * d + 8 * d) + survivors * 4 * d
        assert work["aes_keystream_bytes"] > least
        floor = (
            work["x25519_key_pairs"] * prices["x25519_key_pair_cpu_seconds"]
            + work["x25519_agreements"] * prices["x25519_agreement_cpu_seconds"]
            + work["aes_keystream_bytes"] / prices["aes_ctr_bytes_per_cpu_second"]
        )
        assert pair["ours"]["floor_cpu_seconds"] == pytest.approx(floor)
    summary = cell["floor"]
    ours, flower = cell["medians"]["ours"]["round_cpu"], cell["medians"]["flower"]["round_cpu"]
    assert summary["ours_round_cpu_vs_floor"] == pytest.approx(ours / summary["floor_cpu_seconds"])
    assert summary["flower_round_cpu_vs_floor"] == pytest.approx(
        flower / summary["floor_cpu_seconds"]
    )
    assert summary["ours_round_cpu_vs_floor"] > 1  # nothing beats its own floor
    assert "Floor, measured in this run" in markdown


def test_ckks_compares_nvflare_parameters_with_ours(quick_run):
    result, _, _ = quick_run
    ckks = result["ckks"]
    nv, ours = ckks["nvflare"], ckks["ours"]
    assert nv["parameters"] == {
        "poly_modulus_degree": 8192,
        "coeff_mod_bit_sizes": [60, 40, 40],
        "scale_bits": 40,
    }
    assert ours["parameters"]["scheme"] == "CKKS"
    assert ours["max_abs_error_of_sum"] <= ours["documented_error_bound_of_sum"]
    assert nv["max_abs_error_of_sum"] < 1e-4
    for side in (nv, ours):
        assert side["bytes_per_parameter"] > 0 and side["encrypt_cpu_per_client"] > 0
    assert set(ckks["ratios_nvflare_over_ours"]) == {
        "bytes_per_parameter",
        "encrypt_cpu_per_client",
        "add_cpu_per_client",
        "decrypt_cpu",
    }
