"""The bank-fraud example hook names the environment variable a branch got wrong.

Why: ``SECAGG_ROUNDS=ten`` (or ``SECAGG_EPSILON=abc``) ended the branch in a ValueError
traceback from ``int()``, and ``SECAGG_ROUNDS=0`` or ``-1`` said "target_epsilon needs
epochs, a positive int, not 0", naming neither the variable nor its value (review,
2026-12-06). Each is now a ConfigurationError naming the variable and the value, which
``secagg client`` prints as its one line, exit 2, before any dial.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secagg.errors import ConfigurationError
from secagg.runtime.launch import load_hook

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bank_fraud"


@pytest.fixture
def branch_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = ["amount,velocity,is_fraud"] + [
        f"{i % 7}.5,{i % 3},{int(i % 15 == 0)}" for i in range(60)
    ]
    data = tmp_path / "branch-001.csv"
    data.write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("SECAGG_BRANCH_CSV", str(data))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return data


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("SECAGG_ROUNDS", "ten", "SECAGG_ROUNDS must be a whole number of at least 1, not 'ten'"),
        ("SECAGG_ROUNDS", "0", "SECAGG_ROUNDS must be a whole number of at least 1, not '0'"),
        ("SECAGG_ROUNDS", "2.5", "SECAGG_ROUNDS must be a whole number of at least 1, not '2.5'"),
        ("SECAGG_EPSILON", "abc", "SECAGG_EPSILON must be a positive number, not 'abc'"),
        ("SECAGG_EPSILON", "nan", "SECAGG_EPSILON must be a positive number, not 'nan'"),
        ("SECAGG_EPSILON", "-1", "SECAGG_EPSILON must be a positive number, not '-1'"),
    ],
)
def test_a_wrong_setting_names_its_variable(
    branch_csv: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as refused:
        load_hook("dpsgd_hook:make_hook", "branch-001", 3)
    assert str(refused.value) == said


def test_the_defaults_and_good_values_build_the_hook(
    branch_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECAGG_ROUNDS", " 4 ")
    monkeypatch.setenv("SECAGG_EPSILON", "2.5")
    assert callable(load_hook("dpsgd_hook:make_hook", "branch-001", 3))
