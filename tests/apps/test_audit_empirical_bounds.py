"""``secagg audit empirical``'s numbers are bounded above, as the federation it runs is.

Upper-bounds review (2026-12-05): ``-z 1e300`` ran the audit, overflowed numpy's dot
product and ended "Error: held-out cosines have no spread"; once ``dp.noise_multiplier``
was capped at 10^4 it was refused naming that config key, not the flag. ``--seed 2**70``
was refused as "simulation.seed must be at most 4294967295", another key no auditor
typed, and ``--claimed-epsilon 1e300`` printed a 300-digit claim. Each is now a usage
error of one line naming the flag, before the audit starts.
"""

from __future__ import annotations

from unittest import mock

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main


class _AuditStarted(Exception):
    """The canary audit would have run."""


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["-z", "1e300"], "'--noise-multiplier'"),
        (["--noise-multiplier", "10001"], "'--noise-multiplier'"),
        (["--seed", str(2**70)], "'--seed'"),
        (["--seed", str(2**32)], "'--seed'"),
        (["--claimed-epsilon", "1e300"], "'--claimed-epsilon'"),
    ],
)
def test_a_number_past_its_bound_is_a_usage_error_naming_the_flag(
    args: list[str], flag: str
) -> None:
    with mock.patch("secagg.apps.audit.empirical.run_canary_audit", side_effect=_AuditStarted):
        result = CliRunner().invoke(main, ["audit", "empirical", *args])
    assert not isinstance(result.exception, _AuditStarted), "the audit started"
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and flag in lines[0], result.stderr
