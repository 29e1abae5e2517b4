"""`secagg bench ckks`: issue 17's CKKS size bar is judged in the JSON, from its own cells."""

from __future__ import annotations

import time

import numpy as np
import pytest

from secagg.apps.bench.backends import (
    CKKS_BYTES_PER_PARAMETER_LIMIT,
    TIMING_KEYS,
    CPUTimings,
    main,
    markdown_table,
    packed_bytes_per_parameter,
    run_benchmark,
    targets,
)
from secagg.he.chunks import parameter_layout
from secagg.he.packing import pack_coefficients
from secagg.he.params import CKKSParameters, choose_parameters


def _brute_force_bytes_per_parameter(params: CKKSParameters) -> float:
    """Pack one ciphertext's worth of residues (each just below its prime, the widest
    value it can hold) with the real packer, and divide its length by the values one
    ciphertext carries, counted as slots (N/2) times the values a slot holds (2)."""
    layout = parameter_layout(params)
    residues = np.array(layout.primes, dtype=np.uint64)[None, :, None] - np.uint64(1)
    residues = np.broadcast_to(residues, (2, len(layout.primes), layout.poly_modulus_degree))
    values = (params.poly_modulus_degree // 2) * 2
    return len(pack_coefficients(residues, layout)) / values


def test_the_quick_run_judges_the_ckks_size_bar_from_its_cells():
    result = run_benchmark(ns=(4,), ds=(10_000,), backends=("secagg+", "ckks"), progress=False)
    (target,) = result["targets"]
    ckks = [c for c in result["cells"] if c["backend"] == "ckks"]
    assert target["value"] == max(c["bytes_per_parameter"] for c in ckks)
    assert target["limit"] == CKKS_BYTES_PER_PARAMETER_LIMIT == 20.0
    assert target["value"] <= 10.0  # two values a slot: 9.75 a value plus headers
    assert target["pass"] is True
    assert "ckks_bytes_per_parameter: worst 10.00" in markdown_table(result)
    # "bound now": the packed form of the round's own parameters (n = 4: N = 2048, a
    # 39-bit q: 9.75 a value), under the measured figure by the empty slots of the last
    # of the 5 chunks (10 240 values carried for 10 000) and a few dozen header bytes each
    (cell,) = ckks
    bound = cell["bytes_per_parameter_bound"]
    assert bound == _brute_force_bytes_per_parameter(choose_parameters(4, 1.0, 1e-6)) == 9.75
    carried = bound * 5 * 2048 / 10_000
    assert carried < cell["bytes_per_parameter"] <= carried + 5 * 64 / 10_000
    assert all(c["bytes_per_parameter_bound"] is None for c in result["cells"] if c is not cell)
    assert "| bound now (bytes / parameter) |" in markdown_table(result)
    assert "| 10.00 | 9.75 |" in markdown_table(result)


@pytest.mark.parametrize(
    ("clients", "precision"),
    [(4, 1e-6), (100, 1e-6), (1000, 1e-4)],
    ids=["n4", "n100", "n1000-coarse"],
)
def test_bound_now_is_the_packed_ciphertext_of_the_parameters(clients, precision):
    params = choose_parameters(clients, 1.0, precision)
    assert packed_bytes_per_parameter(params) == _brute_force_bytes_per_parameter(params)


def test_a_cell_over_the_bar_fails_and_is_named():
    cells = [
        {"backend": "ckks", "n": 10, "d": 100_000, "bytes_per_parameter": 10.05},
        {"backend": "ckks", "n": 100, "d": 100_000, "bytes_per_parameter": 23.1},
        {"backend": "secagg+", "n": 100, "d": 100_000, "bytes_per_parameter": 40.0},
    ]
    (target,) = targets(cells)
    assert (target["value"], target["worst_cell"], target["pass"]) == (
        23.1,
        {"n": 100, "d": 100_000},
        False,
    )
    assert targets([c for c in cells if c["backend"] != "ckks"]) == []
    table = markdown_table({"cells": [], "targets": [target]})
    assert "FAIL" in table and "n = 100" in table


def test_repeats_report_the_best_of_every_round_and_keep_them_all():
    result = run_benchmark(
        ns=(3,), ds=(64,), backends=("plain", "secagg+"), progress=False, repeats=3
    )
    assert result["repeats"] == 3
    for cell in result["cells"]:
        assert cell["repeats"] == 3 and len(cell["runs"]) == 3
        for key in TIMING_KEYS:
            assert cell[key] == min(run[key] for run in cell["runs"]), key
        assert cell["round_cpu_seconds"] > 0
    assert "Seconds: CPU seconds, the best of 3 rounds per cell." in markdown_table(result)
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        run_benchmark(ns=(3,), ds=(64,), backends=("plain",), progress=False, repeats=0)


def test_the_scripts_repeats_flag_refuses_zero_in_one_line(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--quick", "--repeats", "0"])
    assert stopped.value.code == 2
    assert "argument --repeats: 0 is not between 1 and 1000" in capsys.readouterr().err


def test_the_roles_are_timed_in_cpu_seconds_not_the_time_other_jobs_hold_the_cores():
    """A role's call that waits (here: sleeps 0.1 s) spends no CPU: the wall clock counted
    the wait, as it counted another job's hold of a shared core, until 2026-12-06."""
    timings = CPUTimings()
    for role, party in (("server", 0), ("helper", 0), ("client", 3)):
        timings.timed(role, party, time.sleep, 0.1)
    assert timings.server_seconds < 0.05 and timings.helper_seconds < 0.05
    assert timings.client_seconds[3] < 0.05
    result = run_benchmark(ns=(3,), ds=(64,), backends=("plain",), progress=False)
    assert result["clock"] == "cpu"
    assert markdown_table(result).startswith("Seconds: CPU seconds.")
