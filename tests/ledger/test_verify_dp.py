"""``audit verify`` re-derives the whole claim, delta and sampling included (DP review M1,
C1, L1, M2): validly signed ledgers whose rows claim another delta, a fixed cohort
accounted as Poisson, an epsilon below the recorded mechanism, a branch whose epsilon
goes down, a completed round without DP, and a restart under another noise multiplier.

Every forged ledger is signed with the ledger's own key: the attack is the operator's
(or a bug's), not a stranger's, so the signatures hold and only the replay can object.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from _ledgers import write_central_config, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accounting import PrivacyAccountant
from secagg.dp.display import shown
from secagg.ledger import LedgerKey, export_public_key
from secagg.ledger.entry import LedgerEntry
from secagg.ledger.verify import ExpectedPrivacy, verify_ledger

Z, Q, DELTA, N = 2.0, 0.1, 1e-5, 20  # RDP at these converges fast and without warnings
NAMES = [f"branch-{i:02d}" for i in range(N)]


def _central_rows(
    zs: list[float],
    *,
    delta: float = DELTA,
    kind: str = "poisson",
    population: int = N,
    charged: list[float] | None = None,
) -> list[dict]:
    """Central client-level rows as the server writes them; the claims are the true
    cumulative epsilon of the rounds' own z (``charged``: the z the claims were computed
    with, as a runtime that re-charges past rounds with its current config does)."""
    accountant = PrivacyAccountant(delta, "rdp", unit="client")
    rows = []
    for number, z in enumerate(zs, start=1):
        if charged is None:
            accountant.step(z, Q)
            claim = accountant.epsilon()
        else:
            replay = PrivacyAccountant(delta, "rdp", unit="client")
            for past in charged[:number]:
                replay.step(past, Q)
            claim = replay.epsilon()
        entry = LedgerEntry(
            federation="audit",
            round=number,
            status="complete",
            reason=None,
            started_at=None,
            finished_at=1.0e9 + number,
            backend={"name": "secagg+"},
            participants=("branch-00", "branch-01"),
            publish_participants=False,  # as the server writes an amplified round
            legacy_layout=True,  # a row before dp.sampling was recorded (version 2)
            contributed=2,
            dropouts={},
            dp={
                "unit": "client",
                "mechanism": "central",
                "clip": 1.0,
                "noise_multiplier": z,
                "noise_std": z * 1.0,
                "sample_rate": Q,
                "accountant": "rdp",
                "delta": delta,
                # as the server writes it: the cohort was not drawn from a config seed
                "sampling": {"kind": kind, "rate": Q, "population": population, "seeded": False},
                # charged at the published cohort's share: 2 of N is Q
                "charged_rate": 2 / population,
                "adjacency": "zero-out one client's update",
            },
            epsilon=claim,
            delta=delta,
            model_sha256=f"{number:064x}",
        )
        rows.append(entry.row(lambda name: name))
    return rows


def _expected(**changes: object) -> ExpectedPrivacy:
    values: dict = {
        "delta": DELTA,
        "unit": "client",
        "mechanism": "central",
        "sampling_kind": "poisson",
        "sample_rate": Q,
        "population": N,
        "noise_multiplier": Z,
        "clip": 1.0,
    }
    return ExpectedPrivacy(**(values | changes))


def _config(
    tmp_path: Path,
    *,
    delta: float = DELTA,
    rate: float = Q,
    z: float = Z,
    budget: float | None = None,
) -> Path:
    return write_central_config(
        tmp_path / "federation.toml",
        name="audit",
        clients=NAMES,
        rate=rate,
        z=z,
        delta=delta,
        budget=budget,
    )


def _cli(ledger: Path, key: LedgerKey, *args: str) -> tuple[int, str]:
    pem = export_public_key(key.public_key, ledger.with_suffix(".pub"))
    result = CliRunner().invoke(main, ["audit", "verify", str(ledger), "--pubkey", str(pem), *args])
    return result.exit_code, result.output


def _failure(path: Path, key: LedgerKey, expected: ExpectedPrivacy | None = None) -> str:
    extra = {} if expected is None else {"expected": expected}
    result = verify_ledger(path, key.public_key, **extra)
    assert result.chain.ok  # the signatures hold: only the replay objects
    assert not result.ok
    assert result.first_failure is not None
    return result.first_failure


def test_verify_catches_edited_delta(tmp_path: Path) -> None:
    """exp7 case 3: privacy.delta edited to 1e-9 on every row and re-signed verified."""
    key = LedgerKey.generate()
    rows = _central_rows([Z] * 3)
    assert verify_ledger(write_ledger(tmp_path / "ok.sqlite", rows, key)[0], key.public_key).ok
    edited = copy.deepcopy(rows)
    for row in edited:
        row["privacy"]["delta"] = 1e-9
    failure = _failure(write_ledger(tmp_path / "edited.sqlite", edited, key)[0], key)
    assert failure.startswith("row 1 (round 1)") and "prints delta 1e-09" in failure
    # a consistent ledger at a weaker delta than the federation promised: only the
    # config can tell (each row replays, its claims follow)
    weaker = write_ledger(tmp_path / "weaker.sqlite", _central_rows([Z] * 3, delta=1e-3), key)[0]
    assert verify_ledger(weaker, key.public_key).ok
    failure = _failure(weaker, key, _expected())
    assert failure.startswith("row 1 (round 1)") and "config's delta is 1e-05" in failure
    status, output = _cli(weaker, key, "--config", str(_config(tmp_path)))
    assert status == 1 and "row 1 (round 1): accounts at delta 0.001" in output


def test_verify_catches_fixed_cohort_as_poisson(tmp_path: Path) -> None:
    """C1: a fixed-size cohort charged with Poisson amplification understates epsilon."""
    key = LedgerKey.generate()
    fixed = write_ledger(tmp_path / "fixed.sqlite", _central_rows([Z] * 3, kind="fixed"), key)[0]
    failure = _failure(fixed, key)
    assert failure.startswith("row 1 (round 1)") and "'fixed' sampling" in failure
    assert "Poisson amplification at sample rate 0.1" in failure
    # the config disagrees on the rate, or on the population the rate was drawn from
    honest = write_ledger(tmp_path / "honest.sqlite", _central_rows([Z] * 3), key)[0]
    assert verify_ledger(honest, key.public_key, expected=_expected()).ok
    failure = _failure(honest, key, _expected(sample_rate=0.2))
    assert failure.startswith("row 1 (round 1)") and "config's rate is 0.2" in failure
    failure = _failure(honest, key, _expected(population=40))
    assert "population of 20 clients but the config has 40" in failure
    status, output = _cli(honest, key, "--config", str(_config(tmp_path, rate=0.2)))
    assert status == 1 and "row 1 (round 1)" in output and "rate" in output


def test_verify_catches_epsilon_below_the_mechanism(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    halved = _central_rows([Z] * 4)
    halved[2]["privacy"]["epsilon"] /= 2
    failure = _failure(write_ledger(tmp_path / "halved.sqlite", halved, key)[0], key)
    assert failure.startswith("row 3 (round 3): claims epsilon")
    assert "below the mechanism's" in failure
    # rows 3-4 account at delta 1e-7 (their own recorded delta) but claim the epsilon
    # at 1e-5: the old replay used the first row's delta for every row
    rows = _central_rows([Z] * 4)
    for row in rows[2:]:
        row["dp"]["delta"] = row["privacy"]["delta"] = 1e-7
    failure = _failure(write_ledger(tmp_path / "delta.sqlite", rows, key)[0], key)
    assert failure.startswith("row 3 (round 3): claims epsilon")
    assert "below the mechanism's" in failure
    # the recorded noise is not the accounted noise multiplier's
    rows = _central_rows([Z] * 3)
    rows[1]["dp"]["noise_std"] = 0.5
    failure = _failure(write_ledger(tmp_path / "std.sqlite", rows, key)[0], key)
    assert failure.startswith("row 2 (round 2): records noise std 0.5")


def _record_row(number: int, reports: dict[str, dict], delta: float = DELTA) -> dict:
    return {
        "version": 1,  # no noise_seeded, nor dp.sampling.seeded
        "round": number,
        "status": "complete",
        "participants": {"count": len(reports)},
        "contributed": len(reports),
        "dropouts": {},
        "backend": {"name": "secagg+"},
        "dp": {
            "unit": "record",
            "mechanism": "dpsgd",
            "clip": 5.0,
            "sample_rate": 1.0,
            "accountant": "in-clients",
            "delta": delta,
            "sampling": {"kind": "poisson", "rate": 1.0, "population": 2},
            "client_reports": reports,
        },
        "privacy": {"epsilon": max(r["epsilon"] for r in reports.values()), "delta": delta},
        "model_sha256": "0" * 64,
    }


def _report(*history: tuple[float, float, int], delta: float = DELTA) -> dict:
    from opacus.accountants import create_accountant

    accountant = create_accountant(mechanism="rdp")
    accountant.history = list(history)
    eps = float(accountant.get_epsilon(delta=delta))
    return {
        "accountant": "rdp",
        "delta": delta,
        "history": [list(h) for h in history],
        "epsilon": eps,
    }


def test_record_level_epsilon_must_not_decrease(tmp_path: Path) -> None:
    """exp7 (run_record) case 4: a branch whose history restarts (a fresh trainer after a
    crash) brings the claim down (1.821 -> 2.471 -> 1.821) and verified."""
    key = LedgerKey.generate()
    grows = [
        _record_row(1, {"a": _report((1.0, 0.02, 100)), "b": _report((1.0, 0.02, 100))}),
        _record_row(2, {"a": _report((1.0, 0.02, 200))}),  # Opacus merges equal runs
        _record_row(3, {"a": _report((1.0, 0.02, 200), (1.5, 0.02, 50))}),
    ]
    result = verify_ledger(write_ledger(tmp_path / "grows.sqlite", grows, key)[0], key.public_key)
    assert result.ok, result.first_failure
    claims = [eps for _, eps in result.epsilons]
    assert claims == sorted(claims)
    restarts = copy.deepcopy(grows)
    # both branches restart their trainers: each report is self-consistent, the
    # row's claim is the worst latest epsilon, and it went down
    restarts[2] = _record_row(3, {"a": _report((1.0, 0.02, 50)), "b": _report((1.0, 0.02, 30))})
    assert restarts[2]["privacy"]["epsilon"] < grows[1]["privacy"]["epsilon"]
    failure = _failure(write_ledger(tmp_path / "restart.sqlite", restarts, key)[0], key)
    assert failure.startswith("row 3 (round 3)") and "does not extend its previous one" in failure


def test_record_level_branch_must_account_at_the_rows_delta(tmp_path: Path) -> None:
    """exp7 (run_record) case 5: every branch at delta 1e-3 under a row printing 1e-5."""
    key = LedgerKey.generate()
    row = _record_row(1, {"a": _report((1.0, 0.02, 100), delta=1e-3)})
    row["dp"]["delta"] = row["privacy"]["delta"] = DELTA
    failure = _failure(write_ledger(tmp_path / "l.sqlite", [row], key)[0], key)
    assert failure.startswith("row 1 (round 1)")
    assert "accounts at delta 0.001 but the row accounts at delta 1e-05" in failure


def test_completed_round_without_dp_block_is_infinite(tmp_path: Path) -> None:
    """exp7 (run_central) case 5, review L1: a completed round with dp: null released
    without noise; it is charged epsilon = infinity, not nothing."""
    key = LedgerKey.generate()
    # the forged round claims the previous epsilon and the later claims skip it
    rows = _central_rows([Z] * 3)
    rows[1]["dp"] = None
    rows[1]["privacy"]["epsilon"] = rows[0]["privacy"]["epsilon"]
    rows[2]["privacy"]["epsilon"] = _central_rows([Z] * 2)[1]["privacy"]["epsilon"]
    failure = _failure(write_ledger(tmp_path / "forged.sqlite", rows, key)[0], key)
    assert failure.startswith("row 2 (round 2): completed without a DP block")
    assert "epsilon is infinite" in failure
    # the round claims nothing (as a no-DP row does), a later round a finite epsilon
    rows[1]["privacy"]["epsilon"] = None
    failure = _failure(write_ledger(tmp_path / "later.sqlite", rows, key)[0], key)
    assert failure.startswith("row 3 (round 3): claims epsilon") and "gives inf" in failure
    # honest about it: verified, but not private (exit 3), epsilon infinite
    rows[2]["privacy"]["epsilon"] = "inf"
    honest = write_ledger(tmp_path / "honest.sqlite", rows, key)[0]
    result = verify_ledger(honest, key.public_key)
    assert result.ok and not result.private
    assert result.unnoised == [(2, 2)] and result.epsilons[-1][1] == float("inf")
    status, output = _cli(honest, key)
    assert status == 3 and "round 2: completed without a DP block" in output
    # a ledger without any DP block: under a config with DP every completed round is
    # unnoised (epsilon infinite); without the config it released without DP at all
    # (test_a_ledger_without_any_dp_block_released_without_dp)
    bare = copy.deepcopy(_central_rows([Z] * 2))
    for row in bare:
        row["dp"] = None
        row["privacy"] = {"epsilon": None, "delta": None}
    plain = write_ledger(tmp_path / "plain.sqlite", bare, key)[0]
    assert not verify_ledger(plain, key.public_key).private
    result = verify_ledger(plain, key.public_key, expected=_expected())
    assert not result.released_without_dp  # the config promised DP: rounds went unnoised
    assert result.ok and not result.private and result.unnoised == [(1, 1), (2, 2)]
    status, output = _cli(plain, key, "--config", str(_config(tmp_path)), "--json")
    assert status == 3 and json.loads(output)["rounds_without_dp"] == [1, 2]


def _no_dp_rows(statuses: list[str], *, seeded: bool) -> list[dict]:
    """Rows as the server writes a federation without DP: no DP block, no claim.
    ``seeded``: as the simulator wrote them before the fix (``noise_seeded: true``
    beside ``dp: null``: there was no DP noise to seed)."""
    rows = []
    for number, status in enumerate(statuses, start=1):
        entry = LedgerEntry(
            federation="audit",
            round=number,
            status=status,
            reason=None if status == "complete" else "round aborted: too few answered",
            started_at=None,
            finished_at=1.0e9 + number,
            backend={"name": "secagg+"},
            participants=("branch-00", "branch-01", "branch-02"),
            contributed=3 if status == "complete" else 0,
            dropouts={},
            dp=None,
            epsilon=None,
            delta=None,
            model_sha256=f"{number:064x}",
            noise_seeded=seeded,
        )
        rows.append(entry.row(lambda name: name))
    return rows


@pytest.mark.parametrize("seeded", [False, True])
def test_a_ledger_without_any_dp_block_released_without_dp(tmp_path: Path, seeded: bool) -> None:
    """A simulator run with ``--mechanism off`` verified as "DP noise was seeded ... its
    epsilon is not a privacy guarantee" with "cumulative epsilon None": the rounds had
    no DP at all. Not private all the same (exit 3), for the reason that holds, whether
    or not the rows carry the old ``noise_seeded: true``."""
    key = LedgerKey.generate()
    path = write_ledger(
        tmp_path / "off.sqlite", _no_dp_rows(["aborted", "complete"], seeded=seeded), key
    )[0]
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert not result.private and result.released_without_dp
    assert result.seeded == []  # no DP noise, so none was seeded
    assert result.unnoised == [(2, 2)]  # the aborted round released nothing
    assert [eps for _, eps in result.epsilons] == [None, None]  # nothing claimed, nothing replayed
    (reason,) = result.not_private_reasons()
    assert reason.startswith("released without differential privacy: no epsilon is claimed")
    assert "seeded" not in reason and "round 2" in reason
    assert any("noise_seeded" in note for note in result.notes) is seeded
    status, output = _cli(path, key)
    assert status == 3, output
    assert "NOT PRIVATE: released without differential privacy: no epsilon is claimed" in output
    assert "DP noise was seeded" not in output and "cumulative epsilon None" not in output
    status, output = _cli(path, key, "--json")
    payload = json.loads(output)
    assert status == 3 and payload["exit_status"] == 3 and payload["private"] is False
    assert payload["noise_seeded_rounds"] == [] and payload["rounds_without_dp"] == [2]
    assert payload["released_without_dp"] is True and payload["epsilon"] is None


def test_a_no_dp_ledger_that_released_nothing_stays_verified(tmp_path: Path) -> None:
    """Only a released round can go without DP: a ledger of aborted rounds verifies."""
    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "aborted.sqlite", _no_dp_rows(["aborted"], seeded=False), key)[0]
    result = verify_ledger(path, key.public_key)
    assert result.ok and result.private and result.unnoised == []
    status, output = _cli(path, key)
    assert status == 0 and "no epsilon is claimed" in output, output


def test_restart_with_changed_config_replays_each_row_with_its_own_parameters(
    tmp_path: Path,
) -> None:
    """Review M2: rounds 1-2 ran at z = 1.5, the federation restarted at z = 2. The auditor's
    config (z = 2) is today's; the history is the ledger's."""
    key = LedgerKey.generate()
    zs = [1.5, 1.5, 2.0, 2.0]
    honest = write_ledger(tmp_path / "honest.sqlite", _central_rows(zs), key)[0]
    result = verify_ledger(honest, key.public_key, expected=_expected(noise_multiplier=2.0))
    assert result.ok, result.first_failure
    assert result.checked_against_config == 4
    accountant = PrivacyAccountant(DELTA, "rdp", unit="client")
    for z in zs:
        accountant.step(z, Q)
    assert result.epsilons[-1][1] == pytest.approx(accountant.epsilon())
    assert result.notes[0] == (
        "2 rounds (first: round 1) recorded noise multiplier 1.5 (config: 2.0); each is "
        "replayed with its own recorded value"
    )
    status, output = _cli(honest, key, "--config", str(_config(tmp_path, z=2.0)))
    # replayed as it ran; its claims rest on amplification by sampling (rows at q = 0.1
    # in the format before 2026-12-03), which the engine no longer credits: exit 3
    assert status == 3, output
    assert "4 DP rows match" in output and "recorded noise multiplier 1.5" in output
    assert "holds only with amplification by sampling" in output
    # a runtime that re-charges the past rounds at the current z claims too little
    recharged = _central_rows(zs, charged=[2.0] * 4)
    recharged[:2] = _central_rows(zs[:2])
    failure = _failure(write_ledger(tmp_path / "recharged.sqlite", recharged, key)[0], key)
    assert failure.startswith("row 3 (round 3): claims epsilon")
    assert "below the mechanism's" in failure


def test_amplification_claims_the_release_does_not_earn_fail() -> None:
    """A distributed row claiming amplification (the untrusted server drew the cohort),
    or any row amplified by sampling beside a public list of who took part, fails."""
    from secagg.ledger.verify import _check_consistency

    block = {
        "unit": "client",
        "mechanism": "distributed",
        "delta": 1e-5,
        "sample_rate": 0.1,
        "sampling": {"kind": "poisson", "rate": 0.1, "population": 10},
    }
    privacy = {"delta": 1e-5}
    problem = _check_consistency(block, privacy, {"count": 1, "identity_hashes": "withheld"})
    assert problem is not None and "untrusted server draws" in problem
    # (with the noise it records: a block without noise_std, z or clip now fails itself)
    noised = {"sample_rate": 1.0, "noise_multiplier": 1.0, "clip": 1.0, "noise_std": 1.0}
    assert _check_consistency(block | noised, privacy, None) is None
    central = block | {"mechanism": "central", "noise_multiplier": 1.0, "clip": 1.0}
    central["noise_std"] = 1.0
    listed = {"count": 1, "identity_hashes": ["ab"]}
    problem = _check_consistency(central, privacy, listed)
    assert problem is not None and "public list" in problem
    assert _check_consistency(central, privacy, {"count": 1, "identity_hashes": "withheld"}) is None


def _distributed_rows(zs: list[float]) -> list[dict]:
    """Distributed rows as the server writes them, the mechanism's noise multiplier per
    round from ``zs``; the claims come from the release (a new mechanism at each change of
    z: what a restart under a changed config would have claimed before it was refused)."""
    import warnings

    import numpy as np

    from secagg.dp.config import DPSettings
    from secagg.dp.release import mechanism_for

    rows, mechanism, current = [], None, None
    for number, z in enumerate(zs, start=1):
        if mechanism is None or z != current:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mechanism = mechanism_for(
                    DPSettings(mechanism="distributed", noise_multiplier=z, delta=DELTA),
                    dimension=16,
                    bits=32,
                    sample_rate=1.0,
                    expected_clients=float(N),
                    corrupt_fraction=0.1,
                    seed=b"s" * 16,
                )
            current = z
        mechanism.round_options(N)
        out = mechanism.release(np.zeros(16), contributors=N, participants=N, noise_added=0.0)
        dp = mechanism.ledger_block(out.store) | {
            "sampling": {"kind": "poisson", "rate": 1.0, "population": N}
        }
        entry = LedgerEntry(
            federation="audit", round=number, status="complete", reason=None,
            started_at=None, finished_at=1.0e9 + number, backend={"name": "secagg+"},
            participants=tuple(NAMES), contributed=N, dropouts={}, dp=dp,
            epsilon=out.epsilon, delta=DELTA, model_sha256=f"{number:064x}",
            legacy_layout=True,  # a sampling record without seeded: version 2
        )  # fmt: skip
        rows.append(entry.row(lambda name: name))
    return rows


def test_distributed_ledger_replays_when_its_parameters_hold(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "d.sqlite", _distributed_rows([1.0, 1.0, 1.0]), key)[0]
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    eps = [e for _, e in result.epsilons]
    assert eps == sorted(eps) and eps[0] < eps[-1]


def test_distributed_parameters_changed_mid_ledger_fail_and_name_the_row(
    tmp_path: Path,
) -> None:
    """A restart that changed the distributed noise would restart its accountant at zero
    (the claims go down); the server refuses such a restart, and a ledger that holds one
    anyway fails at the row of the change: the replay composes one parameter set only."""
    key = LedgerKey.generate()
    rows = _distributed_rows([1.0, 1.0, 2.0])
    failure = _failure(write_ledger(tmp_path / "d.sqlite", rows, key)[0], key)
    assert failure.startswith("row 3 (round 3)")
    assert "parameters changed mid-ledger" in failure


def test_verify_and_report_flag_a_ledger_above_the_configs_budget(tmp_path: Path) -> None:
    """Every epsilon-printing command marks a run that ended above its target: a ledger
    whose rows replay fine but whose epsilon passes ``[dp] epsilon_budget`` fails
    ``verify --config`` at the first row above it, and the report says ABOVE.

    These rows claim amplification by sampling (q = 0.1, the format before 2026-12-03),
    which the engine no longer credits: the budget is held to their rounds charged to
    every client, unamplified (DP audit t2: a claim within the budget passed while the
    unamplified epsilon overspent it)."""
    from secagg.ledger.report import build_report

    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "l.sqlite", _central_rows([Z] * 6), key)[0]
    result = verify_ledger(path, key.public_key)
    assert result.ok
    claims = [e for _, e in result.epsilons]
    accountant, unamplified = PrivacyAccountant(DELTA, "rdp"), []
    for _ in claims:
        accountant.step(Z, 1.0)
        unamplified.append(accountant.epsilon())
    budget = (unamplified[2] + unamplified[3]) / 2  # rounds 1-3 fit, round 4 crosses
    assert claims[-1] < budget  # every claim is within it: the claims alone passed
    failure = _failure(path, key, _expected(epsilon_budget=budget))
    assert failure.startswith(
        f"row 4 (round 4): epsilon {shown(unamplified[3], 6, significant=True)} (unamplified"
    )
    assert "ABOVE the config's epsilon_budget" in failure
    held = verify_ledger(path, key.public_key, expected=_expected(epsilon_budget=unamplified[-1]))
    assert held.ok and held.budget_epsilon == pytest.approx(unamplified[-1])
    status, output = _cli(path, key, "--config", str(_config(tmp_path, budget=budget)))
    assert status == 1 and "row 4 (round 4)" in output and "overspent" in output
    text, _ = build_report(path, key.public_key, _expected(epsilon_budget=budget))
    assert "**ABOVE THE BUDGET** (unamplified: epsilon" in text
    text, _ = build_report(path, key.public_key, _expected(epsilon_budget=2 * unamplified[-1]))
    assert "within it" in text and "ABOVE" not in text


def test_an_overspend_by_a_hair_reads_as_one(tmp_path: Path) -> None:
    """Both figures to 6 digits, to the nearest: a budget a hair below round 4's
    unamplified epsilon read "epsilon 4.17... is ABOVE the config's epsilon_budget 4.17..."
    with the same digits twice. The epsilon is shown rounded up and the budget down."""
    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "l.sqlite", _central_rows([Z] * 6), key)[0]
    accountant = PrivacyAccountant(DELTA, "rdp")
    for _ in range(4):
        accountant.step(Z, 1.0)
    budget = accountant.epsilon() * (1 - 2e-9)  # just past the 1e-9 tolerance
    failure = _failure(path, key, _expected(epsilon_budget=budget))
    spent_text = failure.split(": epsilon ")[1].split()[0]
    budget_text = failure.split("epsilon_budget ")[1].split(":")[0]
    assert float(spent_text) >= accountant.epsilon() > budget >= float(budget_text)
    assert float(spent_text) > float(budget_text)


# --- a sampled row is charged at its published cohort's share (DP audit, 2026-12-03) -----


def _with_rate(rows: list[dict], rate: object) -> list[dict]:
    changed = copy.deepcopy(rows)
    for row in changed:
        if rate is None:
            del row["dp"]["charged_rate"]
        else:
            row["dp"]["charged_rate"] = rate
    return changed


def test_a_row_charged_below_its_published_cohorts_share_fails(tmp_path: Path) -> None:
    """2 of 20 took part (share 0.1); a row claiming a charge at 0.05 understates what
    its own count gives away (the claims are re-signed: only the replay can object)."""
    key = LedgerKey.generate()
    rows = _with_rate(_central_rows([Z] * 2), 0.05)
    failure = _failure(write_ledger(tmp_path / "low.sqlite", rows, key)[0], key)
    assert failure.startswith("row 1 (round 1): is charged at rate 0.05")
    assert "publishes a cohort of 2 of the 20 clients it was drawn from" in failure
    assert failure.endswith("it must be charged at least 0.1")


def test_a_charged_rate_without_its_count_or_pool_fails(tmp_path: Path) -> None:
    """Review (2026-12-03): a row with charged_rate 0.01 and no population verified at
    epsilon 0.99 against 6.48 at q. A rate that cannot be checked now fails."""
    key = LedgerKey.generate()
    rows = _with_rate(_central_rows([Z] * 2), 0.01)
    for row in rows:
        del row["dp"]["sampling"]["population"]
        row["version"] = 2  # an older row (version 3 records the population whole)
    failure = _failure(write_ledger(tmp_path / "nopool.sqlite", rows, key)[0], key)
    assert "without the cohort's size and the number of clients it was drawn from" in failure


def test_an_amplified_ledger_states_its_unamplified_epsilon(tmp_path: Path) -> None:
    """Rows written before 2026-12-03 claim amplification by sampling, which a round's
    own members see through; verify still replays their claims and states what holds
    against those members: every round charged to every client, unamplified."""
    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "sampled.sqlite", _central_rows([Z] * 3), key)[0]
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    unamplified = PrivacyAccountant(DELTA, "rdp")  # the ledger's own accountant
    for _ in range(3):
        unamplified.step(Z, 1.0)
    assert result.unamplified_epsilon == pytest.approx(unamplified.epsilon())
    assert result.unamplified_epsilon > result.epsilons[-1][1]  # the claim understates it
    assert any(
        note.startswith("3 central rows claim amplification by sampling")
        and f"spend epsilon {shown(result.unamplified_epsilon, 4, significant=True)}" in note
        for note in result.notes
    )


@pytest.mark.parametrize("rate", [0.0, 1.5, "0.1", True])
def test_a_malformed_charged_rate_fails(tmp_path: Path, rate: object) -> None:
    key = LedgerKey.generate()
    rows = _with_rate(_central_rows([Z]), rate)
    failure = _failure(write_ledger(tmp_path / "bad.sqlite", rows, key)[0], key)
    assert "charged_rate" in failure


def test_an_aborted_sampled_row_is_neither_charged_nor_noted(tmp_path: Path) -> None:
    """CI of 2026-12-03: an aborted round's row (no charge) was counted among the rows
    noted for how they were charged."""
    key = LedgerKey.generate()
    rows = _central_rows([Z] * 2)
    aborted = copy.deepcopy(rows[1])
    aborted.update(round=3, status="aborted")
    del aborted["dp"]["charged_rate"]
    path = write_ledger(tmp_path / "aborted.sqlite", [*rows, aborted], key)[0]
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert any(note.startswith("2 central rows claim amplification") for note in result.notes)
    assert result.epsilons[-1][1] == pytest.approx(result.epsilons[-2][1])
