"""`secagg bench ckks`: issue 17's CKKS size bar is judged in the JSON, from its own cells."""

from __future__ import annotations

from secagg.apps.bench.backends import (
    CKKS_BYTES_PER_PARAMETER_LIMIT,
    markdown_table,
    run_benchmark,
    targets,
)


def test_the_quick_run_judges_the_ckks_size_bar_from_its_cells():
    result = run_benchmark(ns=(4,), ds=(10_000,), backends=("secagg+", "ckks"), progress=False)
    (target,) = result["targets"]
    ckks = [c for c in result["cells"] if c["backend"] == "ckks"]
    assert target["value"] == max(c["bytes_per_parameter"] for c in ckks)
    assert target["limit"] == CKKS_BYTES_PER_PARAMETER_LIMIT == 20.0
    assert target["value"] <= 10.0  # two values a slot: 9.75 a value plus headers
    assert target["pass"] is True
    assert "ckks_bytes_per_parameter: worst 10.00" in markdown_table(result)


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
