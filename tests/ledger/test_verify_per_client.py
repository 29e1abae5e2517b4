"""``audit verify`` replays a central ledger charged to each client for its own rounds.

Since 2026-12-03 a central row credits no amplification by sampling (a round's members
see one another): it is charged to its participants, whose identity hashes it lists,
and claims the most charged client's epsilon (``dp.composition = "per_client"``). The
auditor recomputes that from the hashes alone. Forged ledgers are signed with the
ledger's own key: only the replay can object.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import PerClientAccountant
from secagg.dp.accounting import PrivacyAccountant
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c", "d"), ("a", "d")]


def _dp(z: float = Z, *, composition: str | None = "per_client") -> dict:
    block = {
        "unit": "client",
        "mechanism": "central",
        "clip": 1.0,
        "noise_multiplier": z,
        "noise_std": z,
        "sample_rate": 1.0,
        "accountant": "pld",
        "delta": DELTA,
        "adjacency": "zero-out one client's update",
        "sampling": {"kind": "poisson", "rate": 0.5, "population": 4, "seeded": False},
    }
    if composition is not None:
        block["composition"] = composition
    return block


def _rows(cohorts=COHORTS, z: float = Z) -> list[dict]:
    """Rows as the server writes them: each charged to its cohort, claiming the most
    charged client's epsilon."""
    accountant = PerClientAccountant(DELTA, "pld")
    rows = []
    for number, cohort in enumerate(cohorts, start=1):
        accountant.step(z, cohort)
        rows.append(
            ledger_row(
                number, _dp(z), accountant.epsilon(), participants=cohort, publish_participants=True
            )
        )
    return rows


def _gaussian(rounds: int, z: float = Z) -> float:
    reference = PrivacyAccountant(DELTA, "pld")
    for _ in range(rounds):
        reference.step(z, 1.0)
    return reference.epsilon()


def _verify(tmp_path: Path, rows: list[dict], name: str = "l.sqlite"):
    path, key = write_ledger(tmp_path / name, rows)
    return verify_ledger(path, key.public_key)


def test_a_per_client_ledger_replays_the_most_charged_clients_epsilon(tmp_path: Path) -> None:
    result = _verify(tmp_path, _rows())
    assert result.ok, result.first_failure
    # "a" is in rounds 1, 2 and 4: 1, 2, 2, 3 rounds for the most charged client
    expected = [_gaussian(n) for n in (1, 2, 2, 3)]
    assert [eps for _, eps in result.epsilons] == pytest.approx(expected, rel=1e-9)
    assert result.unamplified_epsilon is None  # nothing amplified to note
    assert not any("amplification" in note for note in result.notes)


def test_a_claim_below_the_most_charged_client_fails(tmp_path: Path) -> None:
    """The claim of an amplified analysis (Poisson at q = 0.5), written on a row charged
    per client, is below what the cohorts' members can tell: the replay objects."""
    rows = _rows()
    amplified = PrivacyAccountant(DELTA, "pld")
    for _ in range(3):
        amplified.step(Z, 0.5)
    rows[3]["privacy"]["epsilon"] = amplified.epsilon()
    result = _verify(tmp_path, rows)
    assert not result.ok
    assert result.failure.startswith("row 4 (round 4): claims epsilon")
    assert "the claim is below the mechanism's" in result.failure


@pytest.mark.parametrize("hashes", ["withheld", [], None, [1, 2]])
def test_a_per_client_row_without_its_participants_hashes_fails(
    tmp_path: Path, hashes: object
) -> None:
    rows = _rows()
    rows[1]["participants"]["identity_hashes"] = hashes
    result = _verify(tmp_path, rows)
    assert not result.ok and result.failure.startswith("row 2 (round 2)")
    if hashes == [1, 2]:  # no list of hashes at all: the row's shape fails first
        assert "identity_hashes must be a list of hashes or 'withheld'" in result.failure
    else:
        assert "does not list their identity hashes" in result.failure


def test_an_unknown_composition_fails(tmp_path: Path) -> None:
    rows = _rows()
    rows[0]["dp"]["composition"] = "per_round"
    result = _verify(tmp_path, rows)
    assert not result.ok and "unknown dp.composition 'per_round'" in result.failure


def test_older_rows_count_for_every_client_in_the_per_client_claims(tmp_path: Path) -> None:
    """A federation upgraded mid-run: its first rows claim amplification (charged at q,
    participants withheld); the server's restart charges those rounds to every client,
    unamplified, and the per-client rows after them claim that. Verify agrees."""
    old = []
    poisson = PrivacyAccountant(DELTA, "pld")
    for number in (1, 2):
        poisson.step(Z, 0.5)
        block = _dp(composition=None) | {"sample_rate": 0.5}
        old.append(ledger_row(number, block, poisson.epsilon(), participants=("a", "b")))
    restarted = PerClientAccountant(DELTA, "pld")
    for _ in old:
        restarted.step(Z, None)
    new = []
    for number, cohort in ((3, ("c", "d")), (4, ("c", "a"))):
        restarted.step(Z, cohort)
        new.append(
            ledger_row(
                number, _dp(), restarted.epsilon(), participants=cohort, publish_participants=True
            )
        )
    result = _verify(tmp_path, old + new)
    assert result.ok, result.first_failure
    assert result.epsilons[-1][1] == pytest.approx(_gaussian(4), rel=1e-9)  # 2 + c's 2
    assert any(note.startswith("2 central rows claim amplification") for note in result.notes)
    # the same new rows claiming only their own rounds (the old ones forgotten) fail
    forgetful = copy.deepcopy(new)
    forgetful[0]["privacy"]["epsilon"] = _gaussian(1)
    failed = _verify(tmp_path, old + forgetful, "forgetful.sqlite")
    assert not failed.ok and failed.failure.startswith("row 3 (round 3)")


def test_a_restart_under_another_accountant_replays_every_charge(tmp_path: Path) -> None:
    rows = _rows(COHORTS[:2])
    rdp = PerClientAccountant(DELTA, "rdp")
    for cohort in COHORTS:
        rdp.step(Z, cohort)
    for number, cohort in ((3, COHORTS[2]), (4, COHORTS[3])):
        block = _dp() | {"accountant": "rdp"}
        replay = PerClientAccountant(DELTA, "rdp")
        for past in COHORTS[:number]:
            replay.step(Z, past)
        rows.append(
            ledger_row(
                number, block, replay.epsilon(), participants=cohort, publish_participants=True
            )
        )
    result = _verify(tmp_path, rows)
    assert result.ok, result.first_failure
    assert result.epsilons[-1][1] == pytest.approx(rdp.epsilon(), rel=1e-9)


def test_a_claim_frozen_at_the_older_rows_value_fails_after_the_upgrade(tmp_path: Path) -> None:
    """Review of 2026-12-03: per-client rows whose claims stayed at the older rows'
    epsilon were accepted through the fallback for claims of the from-scratch PLD code,
    which only knows the older rows. Per-client claims replay per client only."""
    old = []
    for number in (1, 2):
        reference = PrivacyAccountant(DELTA, "pld")
        for _ in range(number):
            reference.step(Z, 1.0)
        old.append(ledger_row(number, _dp(composition=None), reference.epsilon()))
    frozen = [
        ledger_row(n, _dp(), old[-1]["privacy"]["epsilon"], participants=("a", "b"),
                   publish_participants=True)
        for n in (3, 4, 5, 6)
    ]  # fmt: skip
    result = _verify(tmp_path, old + frozen)
    assert not result.ok and result.failure.startswith("row 3 (round 3): claims epsilon")
    assert result.from_scratch == 0


def test_a_hash_listed_twice_or_a_count_it_does_not_match_fails(tmp_path: Path) -> None:
    rows = _rows()
    rows[1]["participants"]["identity_hashes"] = ["a", "a"]  # one client charged for two
    result = _verify(tmp_path, rows)
    assert not result.ok and result.failure.startswith("row 2 (round 2)")
    assert "lists 1 distinct identity hashes for a count of 2" in result.failure
    rows = _rows()
    rows[2]["participants"]["count"] = 4  # three hashes for four participants
    result = _verify(tmp_path, rows, "count.sqlite")
    assert not result.ok and "for a count of 4 participants" in result.failure


def test_fresh_names_every_round_escape_no_charge(tmp_path: Path) -> None:
    """Review of 2026-12-03: rows naming never-seen clients every round kept the claim at
    one round for ever. A ledger may not name more clients than its population."""
    cohorts = [(f"x{2 * n}", f"x{2 * n + 1}") for n in range(4)]  # 8 names, population 4
    result = _verify(tmp_path, _rows(cohorts))
    assert not result.ok and result.failure.startswith("row 3 (round 3)")
    assert "brings the clients its rows name to 6" in result.failure
    assert "more than the largest population any row records (4)" in result.failure


@pytest.mark.parametrize("z", [1e-200, 1e-320])
def test_noise_too_small_to_represent_fails_cleanly(tmp_path: Path, z: float) -> None:
    rows = _rows()
    rows[0]["dp"] |= {"noise_multiplier": z, "noise_std": z}
    result = _verify(tmp_path, rows)
    assert not result.ok and result.failure.startswith("row 1 (round 1)")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cohorts=st.lists(
        st.sets(st.sampled_from(["a", "b", "c", "d"]), min_size=2).map(sorted),
        min_size=1,
        max_size=8,
    ),
    data=st.data(),
)
def test_random_cohort_schedules_replay_and_a_lowered_claim_fails(
    tmp_path: Path, cohorts: list[list[str]], data: st.DataObject
) -> None:
    rows = _rows([tuple(c) for c in cohorts])
    name = f"r{len(list(tmp_path.iterdir()))}"
    assert _verify(tmp_path, rows, f"{name}.sqlite").ok
    index = data.draw(st.integers(0, len(rows) - 1), label="row")
    rows[index]["privacy"]["epsilon"] *= data.draw(st.floats(0.5, 0.999), label="factor")
    result = _verify(tmp_path, rows, f"{name}-low.sqlite")
    assert not result.ok
    assert result.failure.startswith(f"row {index + 1} (round {index + 1}): claims epsilon")


def test_verify_says_how_many_clients_and_the_most_rounds_any_was_charged(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from secagg.apps.cli import main
    from secagg.ledger import export_public_key

    path, key = write_ledger(tmp_path / "l.sqlite", _rows())
    result = verify_ledger(path, key.public_key)
    summary = dict(result.per_client or {})
    assert summary.pop("every_round_epsilon") >= result.epsilons[-1][1]  # the bound
    assert summary == {"clients": 4, "most_rounds": 3}  # "a": rounds 1, 2, 4
    pem = export_public_key(key.public_key, tmp_path / "l.pub")
    args = ["audit", "verify", str(path), "--pubkey", str(pem)]
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "per client: 4 clients, each charged for the rounds it was in; the most " in text.output
    assert "was in 3, whose epsilon is the claim" in text.output
    payload = json.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    assert payload["per_client"] == {"clients": 4, "most_rounds": 3} | {
        "every_round_epsilon": result.per_client["every_round_epsilon"]  # type: ignore[index]
    }
