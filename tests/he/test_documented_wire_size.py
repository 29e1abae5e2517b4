"""docs/backends.md's CKKS bytes per parameter are what the chooser's parameters give.

The side-by-side table said "10-12" for every cohort; the packed ciphertext costs
2 * log2(q) / 8 bytes a value and q grows with n (log2(2 n C) plus the scale the noise
needs), so at the default precision (10^-6 of the clip) it is 9.25 at n = 2 and 16.75
at n = 10^6. The table now states the figure for each n it names; this test reads them
from the page and recomputes each, so the page cannot drift from the chooser.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from secagg.he import choose_parameters

DOC = Path(__file__).resolve().parents[2] / "docs" / "backends.md"
#: "9.25 at n = 2", "16.75 at n = 10⁶"
_FIGURE = re.compile(r"(\d+(?:\.\d+)?) at n = (\d+)(⁶)?")


def _row() -> str:
    rows = [
        line for line in DOC.read_text().splitlines() if line.startswith("| bytes per parameter")
    ]
    assert len(rows) == 1, "the side-by-side table has one bytes-per-parameter row"
    return rows[0].split("|")[-2]  # the ckks column


def _documented() -> list[tuple[int, float]]:
    figures = []
    for value, base, exponent in _FIGURE.findall(_row()):
        n = int(base) ** 6 if exponent else int(base)
        figures.append((n, float(value)))
    return figures


def test_the_table_names_the_figure_for_small_and_large_cohorts() -> None:
    cohorts = [n for n, _ in _documented()]
    assert min(cohorts) <= 2 and max(cohorts) >= 10**6, cohorts


@pytest.mark.parametrize("case", _documented(), ids=lambda c: f"n{c[0]}")
def test_each_documented_figure_is_the_packed_size_at_the_default_precision(
    case: tuple[int, float],
) -> None:
    clients, documented = case
    params = choose_parameters(clients, 1.0, 1e-6)
    per_value = params.packed_ciphertext_bytes() / params.values_per_ciphertext
    assert per_value == documented == 2 * sum(params.coeff_mod_bit_sizes[:-1]) / 8
