"""Every ``--json`` object of the ``secagg`` command is strict JSON in one encoding
(:mod:`secagg.apps.json_output`, docs/audit.md "JSON output"): an infinite number is
``"inf"`` / ``"-inf"``, NaN is ``null``, every other number a JSON number.

Why: ``privacy epsilon --json -z 1e-200`` printed ``"epsilon": Infinity`` (no JSON: jq
and ``JSON.parse`` refuse it), and ``audit empirical --json`` converted only a
top-level ``+inf``, so a NaN or a ``-inf`` in its result went out bare; ``audit verify
--json`` converted its fields one by one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps import json_output
from secagg.apps.audit import empirical as empirical_module
from secagg.apps.audit.empirical import EmpiricalAudit
from secagg.apps.cli import main


def _refuse(constant: str) -> None:
    raise AssertionError(f"--json printed {constant}, which is no JSON")


def _strict(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse)


def _encoded(value: Any) -> Any:
    """What the documented encoding makes of ``value`` (the test's own statement of it)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {key: _encoded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encoded(item) for item in value]
    return value


_LEAVES = st.floats() | st.integers(-(2**70), 2**70) | st.text(max_size=5) | st.none()
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@settings(max_examples=30, deadline=None)
@given(_VALUES)
def test_dumps_writes_the_documented_encoding_as_strict_json(value: Any) -> None:
    assert _strict(json_output.dumps(value)) == _encoded(value)


def test_privacy_epsilon_of_vanishing_noise_is_the_string_inf() -> None:
    args = ["privacy", "epsilon", "-z", "1e-200", "--rounds", "1", "--sample-rate", "1"]
    result = CliRunner().invoke(main, [*args, "--delta", "1e-5", "--accountant", "rdp", "--json"])
    assert result.exit_code == 0, result.output
    assert _strict(result.stdout)["epsilon"] == "inf"


def _audit(**changes: float) -> EmpiricalAudit:
    """An audit result of a run without noise (the accountant's epsilon infinite)."""
    base = EmpiricalAudit(
        epsilon_lower=7.64, confidence=0.95, method="one-sided", claimed_epsilon=math.inf,
        accountant_epsilon=math.inf, consistent=True, threshold_fpr=1e-7, hits=2,
        tpr_lower=0.001, held_out_fpr=0.0, null_check_p=0.09, epsilon_estimate=11.91,
        mu_estimate=3.2, delta=1e-5, canaries=400, dimension=2081, rounds=10,
        noise_multiplier=0.0, backend="plain", inserted_cosine_mean=0.07,
        held_out_cosine_mean=0.0, held_out_cosine_std=0.02,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    "changes",
    [{}, {"epsilon_estimate": math.inf}, {"mu_estimate": -math.inf}, {"null_check_p": math.nan}],
    ids=["accountant-inf", "estimate-inf", "mu-minus-inf", "p-nan"],
)
def test_audit_empirical_json_encodes_every_figure(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, float]
) -> None:
    """The command's encoding of its result (the 15 s federation replaced by its result)."""
    audit = _audit(**changes)
    monkeypatch.setattr(empirical_module, "run_canary_audit", lambda **_: audit)
    result = CliRunner().invoke(main, ["audit", "empirical", "--rounds", "1", "--json"])
    assert result.exit_code == 0, result.output
    payload = _strict(result.stdout)
    expected = _encoded(dataclasses.asdict(audit)) | {"error": None, "exit_status": 0}
    assert payload == expected
    assert payload["claimed_epsilon"] == payload["accountant_epsilon"] == "inf"


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "verify", "{tmp}/missing.ledger", "--json"],
        ["audit", "empirical", "--rounds", "0", "--json"],
        ["round", "--clients", "4", "--dim", "2", "--json"],
        ["privacy", "noise", "--epsilon", "2", "--delta", "1e-5", "--rounds", "3", "-q", "1",
         "--json"],
    ],
    ids=["verify-usage", "empirical-usage", "round", "privacy-noise"],
)  # fmt: skip
def test_other_json_outputs_are_strict(args: list[str], tmp_path: Path) -> None:
    """The other objects (a usage error's too) parse strictly: a guard on the encoder."""
    result = CliRunner().invoke(main, [arg.format(tmp=tmp_path) for arg in args])
    assert result.exit_code in (0, 2), result.output
    assert isinstance(_strict(result.stdout), dict)
