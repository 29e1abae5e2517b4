"""``audit verify`` and central rows in the format before 2026-12-03 (DP audit t2).

Those rows claim amplification by Poisson sampling (``dp.sample_rate`` below 1, no
``dp.composition``, identity hashes withheld). The engine no longer credits it for
central DP (a round's members see one another; its size is published), and the row
version did not change, so an operator can rewrite today's per-client rows in the old
format and claim less: the audit's forgery claimed 5.84 where the run's per-client
epsilon was 6.57, and verified (exit 0), and passed ``--config`` with budget 6.

Now such a ledger is NOT PRIVATE (exit 3) with a reason that gives the unamplified
epsilon, and ``--config``'s budget is held to that figure. Per-client rows after the
older ones charge those rounds to every client, unamplified, so their claim needs no
amplification: that ledger stays private. Forged ledgers are signed with the ledger's
own key: only the replay can object.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _ledgers import central_dp, ledger_row, write_central_config, write_ledger
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.dp.accountants import PerClientAccountant
from secagg.dp.accounting import PrivacyAccountant
from secagg.dp.display import shown
from secagg.ledger import LedgerKey, export_public_key
from secagg.ledger.verify import EpsilonReplay, ExpectedPrivacy, verify_ledger

Z, Q, DELTA = 2.0, 0.1, 1e-5  # RDP converges here fast and without warnings
NAMES = [f"branch-{i:02d}" for i in range(20)]
COHORTS = [NAMES[0:2], NAMES[1:3], NAMES[2:4]]  # branch-01 and branch-02 are in two


def _dp(z: float = Z, rate: float = Q) -> dict[str, Any]:
    """Today's central block: charged to its participants, no amplification credited."""
    return central_dp(
        z,
        DELTA,
        adjacency="zero-out one client's update",
        sampling={"kind": "poisson", "rate": rate, "population": len(NAMES), "seeded": False},
        composition="per_client",
    )


def _per_client_rows(cohorts: list[list[str]], z: float = Z, rate: float = Q) -> list[dict]:
    """Rows as the server writes them today, each claiming the most charged client's."""
    accountant = PerClientAccountant(DELTA, "rdp")
    rows = []
    for number, cohort in enumerate(cohorts, start=1):
        accountant.step(z, cohort)
        rows.append(
            ledger_row(
                number,
                _dp(z, rate),
                accountant.epsilon(),
                participants=cohort,
                publish_participants=True,
            )
        )
    return rows


def _as_legacy(rows: list[dict], rate: float = Q) -> list[dict]:
    """The audit's forgery: the same rounds in the format before 2026-12-03 (no
    composition, hashes withheld, amplified at ``rate``), every claim recomputed as the
    verifier replays that format, so each one follows."""
    forged = copy.deepcopy(rows)
    replay = EpsilonReplay()
    for row in forged:
        del row["dp"]["composition"]
        row["dp"]["sample_rate"] = rate
        row["participants"]["identity_hashes"] = "withheld"
        row["privacy"]["epsilon"] = replay.feed(row, dp_expected=True)
    return forged


def _unamplified(rounds: int, z: float = Z) -> float:
    accountant = PrivacyAccountant(DELTA, "rdp")
    for _ in range(rounds):
        accountant.step(z, 1.0)
    return accountant.epsilon()


def _expected(budget: float | None, rate: float = Q) -> ExpectedPrivacy:
    return ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=rate,
        population=len(NAMES),
        epsilon_budget=budget,
    )


def _cli(tmp_path: Path, path: Path, key: LedgerKey, *args: str) -> tuple[int, str]:
    pem = export_public_key(key.public_key, tmp_path / "ledger.pub")
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem), *args])
    return result.exit_code, result.output


def test_a_forged_legacy_ledger_is_not_private_and_gives_the_unamplified_epsilon(
    tmp_path: Path,
) -> None:
    """t2: the forgery claims less than the run's per-client epsilon and verified as
    private (exit 0); the note alone gave the unamplified figure."""
    genuine = _per_client_rows(COHORTS)
    forged = _as_legacy(genuine)
    true_claim = genuine[-1]["privacy"]["epsilon"]
    assert forged[-1]["privacy"]["epsilon"] < true_claim  # what the forgery buys
    path, key = write_ledger(tmp_path / "t2.sqlite", forged)
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure  # every claim follows: only the verdict changes
    assert not result.private
    assert result.amplified == [(1, 1), (2, 2), (3, 3)]
    unamplified = _unamplified(3)
    assert result.unamplified_epsilon == pytest.approx(unamplified)
    assert unamplified >= true_claim  # what holds covers the run's true per-client epsilon
    (reason,) = result.not_private_reasons()
    claimed = shown(forged[-1]["privacy"]["epsilon"], 4, significant=True)
    # both figures at their delta (until 2026-12-05 neither stated one)
    at = f" at delta {shown(DELTA, 6, significant=True)}"
    assert reason.startswith(
        f"the claimed epsilon {claimed}{at} holds only with amplification by sampling "
        "(rounds 1, 2, 3"
    )
    assert "which the engine no longer credits" in reason
    assert reason.endswith(
        "unamplified, its central rounds spend epsilon "
        f"{shown(unamplified, 4, significant=True)}{at}"
    )

    status, output = _cli(tmp_path, path, key)
    assert status == 3, output
    assert reason in output
    status, output = _cli(tmp_path, path, key, "--json")
    payload = json.loads(output)
    assert status == 3 and payload["verdict"] == "NOT PRIVATE" and payload["private"] is False
    assert payload["not_private"] == [reason]
    assert payload["epsilon_unamplified"] == pytest.approx(unamplified)


def test_the_budget_is_held_to_the_unamplified_epsilon(tmp_path: Path) -> None:
    """t2 with ``--config``: a budget above every claim but below the unamplified epsilon
    fails at the first row whose unamplified epsilon crosses it, naming that figure."""
    forged = _as_legacy(_per_client_rows(COHORTS))
    claims = [row["privacy"]["epsilon"] for row in forged]
    budget = (max(claims[-1], _unamplified(2)) + _unamplified(3)) / 2
    assert claims[-1] < budget  # the claims alone passed
    path, key = write_ledger(tmp_path / "t2.sqlite", forged)
    result = verify_ledger(path, key.public_key, expected=_expected(budget))
    assert result.first_failure is not None
    spent = shown(_unamplified(3), 6, significant=True)
    assert result.first_failure.startswith(
        f"row 3 (round 3): epsilon {spent} (unamplified: the claim credits "
        "amplification by sampling) is ABOVE the config's epsilon_budget"
    )
    config = write_central_config(
        tmp_path / "federation.toml", name="test", clients=NAMES, rate=Q, z=Z, delta=DELTA,
        budget=budget,
    )  # fmt: skip
    status, output = _cli(tmp_path, path, key, "--config", str(config))
    assert status == 1 and "row 3 (round 3)" in output and "overspent" in output, output
    # a budget the unamplified epsilon fits: the rows match the config, still not private
    fits = verify_ledger(path, key.public_key, expected=_expected(_unamplified(3)))
    assert fits.ok and not fits.private, fits.first_failure


def test_per_client_rows_after_legacy_ones_claim_without_amplification(tmp_path: Path) -> None:
    """A federation upgraded mid-run: its per-client rows charge the older rounds to every
    client, unamplified, so the latest claim rests on no amplification: private, and the
    budget is held to that claim."""
    legacy = _as_legacy(_per_client_rows(COHORTS[:2]))
    restarted = PerClientAccountant(DELTA, "rdp")
    for _ in legacy:
        restarted.step(Z, None)  # what the server's restart charges for them
    upgraded = []
    for number, cohort in ((3, NAMES[4:6]), (4, NAMES[:2])):
        restarted.step(Z, cohort)
        upgraded.append(
            ledger_row(
                number, _dp(), restarted.epsilon(), participants=cohort, publish_participants=True
            )
        )
    path, key = write_ledger(tmp_path / "upgraded.sqlite", legacy + upgraded)
    claim = upgraded[-1]["privacy"]["epsilon"]
    result = verify_ledger(path, key.public_key, expected=_expected(claim))
    assert result.ok, result.first_failure
    assert result.private and result.amplified == [] and result.not_private_reasons() == []
    assert any(note.startswith("2 central rows claim amplification") for note in result.notes)
    assert result.budget_epsilon == pytest.approx(claim)
    # the older rows alone: their latest claim rests on the amplification
    prefix, prefix_key = write_ledger(tmp_path / "prefix.sqlite", legacy)
    assert verify_ledger(prefix, prefix_key.public_key).amplified == [(1, 1), (2, 2)]


def test_an_older_row_charged_at_rate_one_claims_no_amplification(tmp_path: Path) -> None:
    """A sampled older row charged at ``charged_rate`` 1 (its published cohort is every
    client it was drawn from) claims the unamplified epsilon: nothing rests on sampling."""
    rows = _as_legacy(_per_client_rows([NAMES, NAMES]))
    replay = EpsilonReplay()
    for row in rows:
        row["dp"]["charged_rate"] = 1.0  # all 20 clients took part
        row["privacy"]["epsilon"] = replay.feed(row, dp_expected=True)
    path, key = write_ledger(tmp_path / "all.sqlite", rows)
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert result.private and result.amplified == []
    assert result.epsilons[-1][1] == pytest.approx(_unamplified(2))


@settings(max_examples=12, deadline=None)
@given(
    z=st.sampled_from([2.0, 3.0, 4.0]),
    rate=st.sampled_from([0.05, 0.1]),
    rounds=st.integers(min_value=1, max_value=4),
)
def test_any_amplified_legacy_ledger_is_held_to_its_unamplified_epsilon(
    z: float, rate: float, rounds: int
) -> None:
    """Whatever the noise, rate and length: a ledger of older amplified rows verifies
    (its claims follow) but is not private, states its unamplified epsilon (never below
    the claim), and fails a budget between the two while passing one it fits."""
    cohorts = [NAMES[: max(2, round(rate * len(NAMES)))]] * rounds
    forged = _as_legacy(_per_client_rows(cohorts, z, rate), rate)
    claim, unamplified = forged[-1]["privacy"]["epsilon"], _unamplified(rounds, z)
    assert claim < unamplified
    with tempfile.TemporaryDirectory(prefix="legacy-") as folder:
        path, key = write_ledger(Path(folder) / "ledger.sqlite", forged)
        result = verify_ledger(path, key.public_key)
        assert result.ok and not result.private, result.first_failure
        assert result.unamplified_epsilon == pytest.approx(unamplified)
        between = verify_ledger(
            path, key.public_key, expected=_expected((claim + unamplified) / 2, rate)
        )
        assert between.first_failure is not None and "(unamplified" in between.first_failure
        assert verify_ledger(path, key.public_key, expected=_expected(unamplified, rate)).ok


@pytest.mark.parametrize("replayed", [0.999, 1.001], ids=["replay-below", "replay-above"])
def test_the_reason_quotes_the_larger_of_the_claim_and_its_replay(
    tmp_path: Path, replayed: float
) -> None:
    """The reason's "claimed epsilon" was the replay's figure: a claim above it (within
    the tolerance) read less than the ledger claims. It is now what every other line
    shows for the row (:meth:`AuditResult.shown_epsilon`), rounded up."""
    forged = _as_legacy(_per_client_rows(COHORTS))
    path, key = write_ledger(tmp_path / "t2.sqlite", forged)
    result = verify_ledger(path, key.public_key)
    claim = forged[-1]["privacy"]["epsilon"]
    seq, _ = result.epsilons[-1]
    result.epsilons[-1] = (seq, claim * replayed)  # the replay a hair off the claim
    (reason,) = result.not_private_reasons()
    larger = shown(max(claim, claim * replayed), 4, significant=True)
    assert reason.startswith(f"the claimed epsilon {larger} at delta {DELTA:g} holds")
