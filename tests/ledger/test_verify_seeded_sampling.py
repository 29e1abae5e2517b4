"""``audit verify`` and ``dp.sampling.seeded`` (DP H4): a cohort drawn from the config's
seed is predictable, so a row amplified by sampling with it does not replay.

Every forged ledger is signed with the ledger's own key: the operator (or a bug) wrote
it, so the signatures hold and only the replay can object.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _ledgers import write_central_config, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accounting import PrivacyAccountant
from secagg.ledger import LedgerKey, export_public_key
from secagg.ledger.entry import LedgerEntry
from secagg.ledger.verify import verify_ledger

Z, Q, DELTA, N = 2.0, 0.1, 1e-5, 20  # RDP converges here fast and without warnings
UNSAID = object()  # a row written before dp.sampling recorded "seeded"


def _rows(
    rounds: int, *, seeded: object, rate: float = Q, noise_seeded: bool = False
) -> list[dict]:
    """Central client-level rows as the server writes them, with true cumulative claims."""
    accountant = PrivacyAccountant(DELTA, "rdp", unit="client")
    sampling: dict[str, object] = {"kind": "poisson", "rate": rate, "population": N}
    if seeded is not UNSAID:
        sampling["seeded"] = seeded
    rows = []
    for number in range(1, rounds + 1):
        accountant.step(Z, rate)
        entry = LedgerEntry(
            federation="h4",
            round=number,
            status="complete",
            reason=None,
            started_at=None,
            finished_at=1.0e9 + number,
            backend={"name": "secagg+"},
            participants=("branch-00", "branch-01"),
            publish_participants=rate == 1.0,  # as the server writes an amplified round
            legacy_layout=True,  # a row before dp.sampling was recorded whole (version 2)
            contributed=2,
            dropouts={},
            dp={
                "unit": "client",
                "mechanism": "central",
                "clip": 1.0,
                "noise_multiplier": Z,
                "noise_std": Z,
                "sample_rate": rate,
                "accountant": "rdp",
                "delta": DELTA,
                "sampling": dict(sampling),
                # charged at the published cohort's share (2 of N), as the server writes it
                **({"charged_rate": 2 / N} if rate < 1 else {}),
                "adjacency": "zero-out one client's update",
            },
            epsilon=accountant.epsilon(),
            delta=DELTA,
            model_sha256=f"{number:064x}",
            noise_seeded=noise_seeded,
        )
        rows.append(entry.row(lambda name: name))
    return rows


def test_h4_a_row_amplified_by_a_seeded_cohort_fails(tmp_path: Path) -> None:
    """What the server wrote before the fix, had it said the cohort was seeded: an
    epsilon at q = 0.1 over a cohort anyone holding the config could predict."""
    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "forged.sqlite", _rows(2, seeded=True), key)[0]
    result = verify_ledger(path, key.public_key)
    assert not result.ok
    assert result.first_failure is not None
    assert result.first_failure.startswith("row 1 (round 1): claims amplification by sampling")
    assert "federation.seed" in result.first_failure
    pem = export_public_key(key.public_key, path.with_suffix(".pub"))
    cli = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem)])
    assert cli.exit_code == 1 and "federation.seed" in cli.output, cli.output


def test_h4_a_tampered_row_in_an_honest_ledger_fails_at_that_row(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    rows = _rows(3, seeded=False)
    rows[2]["dp"]["sampling"]["seeded"] = True
    result = verify_ledger(write_ledger(tmp_path / "tampered.sqlite", rows, key)[0], key.public_key)
    assert result.first_failure is not None
    assert result.first_failure.startswith("row 3 (round 3): claims amplification")


def test_unseeded_sampling_verifies_but_is_not_private_for_its_amplification(
    tmp_path: Path,
) -> None:
    """An unseeded cohort fails nothing here, but the rows' claim rests on amplification
    by sampling, which the engine no longer credits (their cohorts' members see through
    it): noted, and the ledger is not private for that one reason (DP audit t2)."""
    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "honest.sqlite", _rows(2, seeded=False), key)[0]
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert result.seeded_sampling == [] and result.seeded == []
    (note,) = result.notes
    assert note.startswith("2 central rows claim amplification by sampling")
    assert not result.private
    (reason,) = result.not_private_reasons()
    assert "holds only with amplification by sampling (rounds 1, 2" in reason


def test_a_seeded_cohort_without_amplification_verifies_private(tmp_path: Path) -> None:
    """q = 1: everyone is sampled, nothing is claimed for the sampling, a seed is harmless."""
    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "q1.sqlite", _rows(2, seeded=True, rate=1.0), key)[0]
    result = verify_ledger(path, key.public_key)
    assert result.ok and result.private, result.first_failure


def test_a_replay_with_a_seeded_cohort_is_not_private_on_both_counts(tmp_path: Path) -> None:
    """A simulation's rows: noise and cohort both from the seed. The claim replays (it is
    the simulation's nominal figure), and each round is listed once as not private."""
    key = LedgerKey.generate()
    rows = _rows(2, seeded=True, noise_seeded=True)
    result = verify_ledger(write_ledger(tmp_path / "replay.sqlite", rows, key)[0], key.public_key)
    assert result.ok, result.first_failure
    assert not result.private
    assert result.seeded_sampling == result.seeded == [(1, 1), (2, 2)]
    reasons = result.not_private_reasons()
    assert len(reasons) == 3  # each round once, then the ledger's claim once
    assert all("amplification by sampling" in reason for reason in reasons)
    assert reasons[0].startswith("round 1: DP noise was seeded (a simulation/replay)")
    assert reasons[2].startswith("the claimed epsilon")
    assert "the engine no longer credits" in reasons[2]


def test_a_row_before_the_flag_is_noted_not_failed(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "old.sqlite", _rows(2, seeded=UNSAID), key)[0]
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    # not private only for the amplification itself, which the engine no longer credits
    assert not result.private and result.amplified == [(1, 1), (2, 2)]
    assert (
        "2 client-level rows claim amplification by sampling but predate the "
        "dp.sampling.seeded record: whether their cohort was drawn from a seed in the "
        "config (predictable, so not amplified) is not recorded"
    ) in result.notes


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_malformed_seeded_flag_fails(tmp_path: Path, value: object) -> None:
    key = LedgerKey.generate()
    rows = _rows(1, seeded=value, rate=1.0)  # checked whatever the rate
    result = verify_ledger(write_ledger(tmp_path / "bad.sqlite", rows, key)[0], key.public_key)
    assert result.first_failure is not None
    assert "dp.sampling.seeded must be true or false" in result.first_failure


# --- re-checking an old run against its seeded config (audit verify --config) ------------


def _config(tmp_path: Path, *, seed: int | None, rate: float = Q, extra: str = "") -> Path:
    """The federation config of the rows above; ``seed`` set, as configs were written
    before the server refused a seeded cohort beside amplification."""
    return write_central_config(
        tmp_path / "federation.toml",
        name="h4",
        clients=[f"branch-{i:02d}" for i in range(N)],
        rate=rate,
        z=Z,
        delta=DELTA,
        federation_extra=("" if seed is None else f"seed = {seed}\n") + extra,
    )


def _verify_cli(tmp_path: Path, rows: list[dict], config: Path) -> tuple[int, str]:
    path, key = write_ledger(tmp_path / "ledger.sqlite", rows)
    pem = export_public_key(key.public_key, tmp_path / "ledger.pub")
    result = CliRunner().invoke(
        main, ["audit", "verify", str(path), "--pubkey", str(pem), "--config", str(config)]
    )
    return result.exit_code, result.output


def test_an_old_ledger_against_its_seeded_config_fails_at_its_first_amplified_row(
    tmp_path: Path,
) -> None:
    """The rows predate dp.sampling.seeded, so only the config records the seed. The
    auditor was told "--config: federation.seed ... remove federation.seed" (exit 2, no
    verdict); the config is the record of what ran, so its seed fails the claim."""
    code, output = _verify_cli(tmp_path, _rows(3, seeded=UNSAID), _config(tmp_path, seed=7))
    assert code == 1, output
    assert "row 1 (round 1)" in output
    assert "config draws every cohort from its federation.seed" in output
    assert "Traceback" not in output


def test_the_same_ledger_against_an_unseeded_config_verifies(tmp_path: Path) -> None:
    """Nothing fails without the seed; the claim still rests on amplification by sampling,
    which the engine no longer credits: not private (exit 3), not a failure."""
    code, output = _verify_cli(tmp_path, _rows(3, seeded=UNSAID), _config(tmp_path, seed=None))
    assert code == 3, output
    assert "VERIFIED: 3 rows" in output and "holds only with amplification by sampling" in output


def test_a_seeded_config_without_amplification_verifies(tmp_path: Path) -> None:
    """A seed with everyone sampled claims nothing from sampling: the server runs it and
    the auditor's verdict is the rows' own."""
    rows = _rows(2, seeded=True, rate=1.0)
    code, output = _verify_cli(tmp_path, rows, _config(tmp_path, seed=7, rate=1.0))
    assert code == 0, output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # checked before the seeded-cohort refusal
        (
            ("dimension = 4\n", "dimension = 4\nrounds = 0\n"),
            "federation.rounds must be at least 1",
        ),
        # checked after it: only the reload without the seed can find it (review)
        (
            ("value_bound = 1.0", "value_bound = 0.5"),
            "backend.value_bound must be at least dp.clip",
        ),
    ],
)
def test_a_seeded_config_with_another_mistake_is_still_a_usage_error(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    config = _config(tmp_path, seed=7)
    config.write_text(config.read_text().replace(*change))
    code, output = _verify_cli(tmp_path, _rows(1, seeded=UNSAID), config)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output


def test_a_server_now_runs_the_seeded_config_that_an_auditor_reads(tmp_path: Path) -> None:
    """Since 2026-12-03 no epsilon credits the sampling, so a seeded config loads for a
    server too; the auditor still learns that its cohorts were seeded, which fails the
    older rows that claimed amplification under it."""
    from secagg.runtime.config import FederationConfig

    config = _config(tmp_path, seed=7)
    assert FederationConfig.load(config).seed == 7
    federation, seeded = FederationConfig.load_for_audit(config)
    assert seeded and federation.seed == 7 and federation.sample_rate == Q
    assert FederationConfig.load_for_audit(_config(tmp_path, seed=None))[1] is False
