"""``secagg audit empirical``: an audited federation that does not complete is a FAILED
audit (exit 1, one line saying what failed; with ``--json`` one object, exit_status 1),
not a usage error.

Why: the runtime's "did not complete" came back as a ConfigurationError, which the
command turned into ``Error: the audited federation did not complete: ...``, exit 2, the
status of a mistake in an option, naming none (review of the audit command's edges,
2026-12-06). A script told "usage error" would fix its flags, not look at the run.

Cheap: the command's run is the real :func:`run_canary_audit` over the numpy branches
(``branch_model="linear"``, d = 8, no torch), its server sampling a single client, so
round 1 aborts ("fewer than 2 clients") and the server ends the federation at once.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import pytest
from click.testing import CliRunner

from secagg.apps.audit import empirical
from secagg.apps.cli import main

ARGS = ["audit", "empirical", "--rounds", "1", "--canaries", "2", "--branches", "2", "--seed", "0"]
WHY = "the audited federation did not complete: fewer than 2 clients sampled or connected"


def _sample_one(server: Any) -> None:
    """The server draws one client a round: every round aborts before any message."""
    server.sample = lambda: ["branch-0"]


@pytest.fixture
def aborting_run(monkeypatch: pytest.MonkeyPatch) -> None:
    real = empirical.run_canary_audit

    def run(**options: Any) -> empirical.EmpiricalAudit:
        return real(**options, branch_model="linear", dimension=8, tamper=_sample_one)

    monkeypatch.setattr(empirical, "run_canary_audit", run)


@pytest.mark.usefixtures("aborting_run")
def test_the_text_says_the_run_failed_in_one_line() -> None:
    result = CliRunner().invoke(main, ARGS)
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.stdout == ""
    # the runtime logs its rounds to stderr too; the command's own word is one line
    (line,) = [x for x in result.stderr.splitlines() if WHY in x]
    assert line == f"FAILED: {WHY}: no release, so no bound"
    assert not any(x.startswith("Error:") for x in result.stderr.splitlines())


@pytest.mark.usefixtures("aborting_run")
def test_json_is_one_object_with_exit_status_1() -> None:
    result = CliRunner().invoke(main, [*ARGS, "--json"])
    assert result.exit_code == 1, (result.output, result.exception)
    payload = json.loads(result.stdout)
    result_keys = [field.name for field in fields(empirical.EmpiricalAudit)]
    assert list(payload) == [*result_keys, "error", "exit_status"]
    assert all(payload[key] is None for key in result_keys)
    assert payload["exit_status"] == 1 and payload["error"].startswith(WHY), payload


def test_the_library_raises_its_own_type_not_a_configuration_error() -> None:
    """A caller of :func:`run_canary_audit` tells a failed run from bad arguments."""
    from secagg.errors import ConfigurationError

    with pytest.raises(empirical.AuditedFederationIncomplete) as caught:
        empirical.run_canary_audit(
            noise_multiplier=1.0,
            rounds=1,
            canaries=2,
            branches=2,
            branch_model="linear",
            dimension=8,
            tamper=_sample_one,
        )
    assert not isinstance(caught.value, ConfigurationError)
    assert caught.value.reason == "fewer than 2 clients sampled or connected"


def test_a_federation_stopped_before_any_round_says_the_servers_reason() -> None:
    """No round ran, so no aborted round has a reason: the server's stop reason is said
    (it read "too few rounds")."""

    def no_quorum(server: Any) -> None:
        server._await_quorum = lambda timeout: "test: the quorum never formed"

    with pytest.raises(empirical.AuditedFederationIncomplete) as caught:
        empirical.run_canary_audit(
            noise_multiplier=1.0,
            rounds=1,
            canaries=2,
            branches=2,
            branch_model="linear",
            dimension=8,
            tamper=no_quorum,
        )
    assert caught.value.reason.startswith("no quorum within"), caught.value.reason
    assert caught.value.reason.endswith("test: the quorum never formed")
