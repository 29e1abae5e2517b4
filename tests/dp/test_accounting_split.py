"""secagg.dp.accounting after its split into modules: every name it held is still there.

accounting.py was about 2 000 lines; its code now lives in modules of secagg.dp by what it
does (the round model, the closed form, the RDP and PLD compositions, a plan's figures,
the calibration, the running accountant) and accounting.py re-exports it. Callers, the
docs and earlier ledgers' tooling import from ``secagg.dp.accounting``, private names
included, so each name it defined or imported before the split must still be importable
from there, and be the very object its new home holds (not a copy that a patch or a
cache would miss).
"""

from __future__ import annotations

import importlib

import pytest

import secagg.dp.accounting as accounting

#: every non-module name secagg.dp.accounting held before the split (typing and
#: dataclass helpers left out), and the module that now defines it
HOMES = {
    "accounting_core": [
        "ACCOUNTANTS",
        "DEFAULT_COUNT_SENSITIVITY",
        "PLD_VALUE_DISCRETIZATION",
        "AccountantCannotEvaluate",
        "PrvCannotEvaluate",
        "_Composition",
        "_NEIGHBOURING",
        "_Round",
        "_UNITS",
        "_accountant",
        "_effective_multiplier",
        "_epsilon_of",
        "_fresh_accountant",
        "_sampled",
        "adaptive_noise_split",
        "dp_accounting_version",
    ],
    "gaussian_closed_form": [
        "_gaussian_delta",
        "_gaussian_epsilon",
        "gaussian_epsilon",
        "subsampled_epsilon_bound",
    ],
    "rdp_composition": ["_RdpComposition", "_rdp_curve"],
    "pld_composition": [
        "MAX_PLD_POINTS",
        "PldTooLarge",
        "_ADD_OR_REMOVE",
        "_FLOOR_COARSENING",
        "_GaussianLoss",
        "_LOG_MGFS",
        "_PldComposition",
        "_Power",
        "_TAIL_MASS",
        "_build_sampled_pld",
        "_check_pld_size",
        "_dense_epsilon",
        "_gaussian_pld",
        "_least_pld_noise",
        "_log_mgfs",
        "_pld_epsilon",
        "_pld_points",
        "_sampled_pld",
        "_subsampled_gaussian_pld",
        "check_pld_rounds",
    ],
    "plan_figures": [
        "MOST_ROUNDS_TAIL",
        "PlanCharge",
        "_REFUSALS",
        "_Refusals",
        "_fedavg_epsilon",
        "_federation_delta",
        "epsilon",
        "federation_epsilon",
        "likely_most_rounds",
        "plan_charge",
        "plan_epsilon",
    ],
    "calibration": [
        "BudgetNoise",
        "NoiseFloorWarning",
        "_BUDGET_ROUNDING_STEPS",
        "_bracket",
        "_calibrate",
        "_floor_warned",
        "_floor_warning",
        "_narrow",
        "_pld_floor_warned",
        "_unstable_note",
        "federation_noise_multiplier",
        "noise_for_budget",
        "noise_multiplier_after",
        "noise_multiplier_for",
        "printed_noise_multiplier",
    ],
    "running_accountant": ["PrivacyAccountant", "_Memo", "_parse_entry"],
    # imported by accounting.py before the split, and still re-exported
    "ddg_accounting": [
        "DDG_ORDERS",
        "ddg_epsilon",
        "inflated_l2_bound",
        "poisson_subsampled_rdp_bound",
    ],
    "_checks": ["_count", "_delta", "_positive", "_sample_rate"],
    "config": ["MAX_NOISE_MULTIPLIER", "PrivacyCostWarning"],
    "display": ["shown"],
}
#: the names secagg.errors gave accounting.py (not a module of secagg.dp)
FROM_ERRORS = ["BudgetUnreachable", "ConfigurationError"]

CASES = [(home, name) for home, names in HOMES.items() for name in names]


def test_the_list_is_the_old_module_s_92_names_less_its_8_typing_helpers() -> None:
    assert len(CASES) + len(FROM_ERRORS) == 92 - 8


@pytest.mark.parametrize(("home", "name"), CASES, ids=[f"{h}.{n}" for h, n in CASES])
def test_each_old_name_is_importable_from_accounting_and_is_its_home_s_object(
    home: str, name: str
) -> None:
    module = importlib.import_module(f"secagg.dp.{home}")
    assert getattr(accounting, name) is getattr(module, name)


def test_the_errors_it_imported_are_still_there() -> None:
    errors = importlib.import_module("secagg.errors")
    for name in FROM_ERRORS:
        assert getattr(accounting, name) is getattr(errors, name)


def test_the_public_list_is_unchanged_and_importable() -> None:
    assert len(accounting.__all__) == 27
    for name in accounting.__all__:
        assert hasattr(accounting, name), name


@pytest.mark.parametrize("home", [h for h in HOMES if h not in ("_checks", "config", "display")])
def test_each_accounting_module_says_what_lives_there_and_why(home: str) -> None:
    doc = importlib.import_module(f"secagg.dp.{home}").__doc__ or ""
    if home == "ddg_accounting":  # older than the split, in its own words
        assert "re-exports" in doc
        return
    assert "What lives here" in doc and "Why a module of its own" in doc, home
