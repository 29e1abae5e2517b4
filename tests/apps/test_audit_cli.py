"""``secagg audit verify`` as an auditor runs it: rollback anchors and seeded noise.

Regression tests for the security review's L1 (a ledger cut back to an older signed head
that the live files still held) and M1 (DP noise drawn from a replayable seed).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.crypto.signing import VerifyKey
from secagg.dp.accounting import PrivacyAccountant
from secagg.errors import SecAggError
from secagg.ledger import Ledger, LedgerKey, export_public_key
from secagg.ledger.chain import head_message
from secagg.ledger.entry import LedgerEntry

Z, Q, DELTA = 2.0, 0.1, 1e-5  # RDP converges here without warnings, and fast


def _rows(rounds: int, seeded: frozenset[int] = frozenset()) -> list[dict]:
    """Rows of central DP with a true cumulative epsilon, every round charged to every
    client (q = 1): a claim that rests on amplification by sampling (the older rows at
    q < 1) is reported NOT PRIVATE (exit 3), which these anchor and seeding tests are
    not about."""
    accountant = PrivacyAccountant(DELTA, "rdp", unit="client")
    out = []
    for number in range(1, rounds + 1):
        accountant.step(Z, 1.0)
        entry = LedgerEntry(
            federation="test",
            round=number,
            status="complete",
            reason=None,
            started_at=None,
            finished_at=1.0e9 + number,
            backend={"name": "secagg+"},
            participants=("a", "b"),
            publish_participants=False,  # the hashes of a row before 2026-12-03
            legacy_layout=True,  # a row before dp.sampling was recorded (version 2)
            contributed=2,
            dropouts={},
            dp={
                "unit": "client",
                "mechanism": "central",
                "clip": 1.0,
                "noise_multiplier": Z,
                "noise_std": Z,
                "sample_rate": 1.0,
                "accountant": "rdp",
                "delta": DELTA,
            },
            epsilon=accountant.epsilon(),
            delta=DELTA,
            model_sha256=f"{number:064x}",
            noise_seeded=number in seeded,
        )
        out.append(entry.row(lambda name: name))
    return out


def _audit(*args: str) -> Result:
    return CliRunner().invoke(main, ["audit", "verify", *args])


def _keyed(path: Path, key: LedgerKey, *args: str) -> Result:
    """``audit verify`` as an auditor runs it: with the public key the operator gave."""
    pem = export_public_key(key.public_key, path.with_name(path.name + ".pub"))
    return _audit(str(path), "--pubkey", str(pem), *args)


def _printed_head(result: Result) -> str:
    match = re.search(r"^head: (\d+:[0-9a-f]{64})$", result.output, re.MULTILINE)
    assert match, result.output
    return match.group(1)


def _signed_heads_in_files(path: Path, public_key: bytes) -> list[int]:
    """The review's harvest: every 128-hex string in the ledger's files (main, WAL, shm)
    tried as a head signature for each row's (seq, hash). Returns the seqs it signs."""
    blob = b"".join(
        Path(str(path) + suffix).read_bytes()
        for suffix in ("", "-wal", "-shm", "-journal")
        if Path(str(path) + suffix).exists()
    )
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = db.execute("SELECT seq, hash FROM ledger ORDER BY seq").fetchall()
    db.close()
    verify = VerifyKey(public_key)
    found = set()
    for candidate in set(re.findall(rb"(?=([0-9a-f]{128}))", blob)):
        for seq, digest in rows:
            try:
                verify.verify(bytes.fromhex(candidate.decode()), head_message(seq, digest))
            except (SecAggError, ValueError):
                continue
            found.add(seq)
    return sorted(found)


def _cut_to(source: Path, target: Path, seq: int, head: tuple[int, str, str]) -> None:
    """The attack: copy the ledger, delete rows after ``seq``, reinstall an old signed head."""
    shutil.copy(source, target)
    db = sqlite3.connect(target)
    db.execute("DELETE FROM ledger WHERE seq > ?", (seq,))
    db.execute("INSERT OR REPLACE INTO ledger_head VALUES (1, ?, ?, ?)", head)
    db.commit()
    db.close()


def _head_row(path: Path) -> tuple[int, str, str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    (row,) = db.execute("SELECT seq, hash, signature FROM ledger_head").fetchall()
    db.close()
    return int(row[0]), str(row[1]), str(row[2])


def test_l1_truncated_ledger_with_old_head_from_wal_fails(tmp_path: Path) -> None:
    """L1: (1) the live files of an open ledger no longer hold earlier signed heads (the
    old writer left one per append in the WAL: seqs 1-6); (2) an older head the attacker
    got elsewhere (an earlier copy) still makes a cut ledger's chain verify, but
    ``--expect-head`` with the head the auditor kept fails it."""
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    pub = export_public_key(key.public_key, tmp_path / "ledger.pub")
    ledger = Ledger(path, key)
    for number, row in enumerate(_rows(6), start=1):
        ledger.append(row)
        if number == 2:
            earlier_copy = _head_row(path)  # e.g. a backup taken after round 2
    # (1) snapshot of the live files while the server runs: only the current head
    assert _signed_heads_in_files(path, key.public_key) == [6]
    assert Path(str(path) + "-wal").stat().st_size == 0
    ledger.close()
    audited = _audit(str(path), "--pubkey", str(pub))
    assert audited.exit_code == 0, audited.output
    kept = _printed_head(audited)
    assert kept.startswith("6:")
    # (2) cut to 2 rows with the head from the earlier copy: the chain alone accepts it ...
    cut = tmp_path / "cut.ledger"
    _cut_to(path, cut, 2, earlier_copy)
    assert _audit(str(cut), "--pubkey", str(pub)).exit_code == 0  # inherent: see docs
    # ... the auditor's anchor does not
    result = _audit(str(cut), "--pubkey", str(pub), "--expect-head", kept)
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output and "cut from the end" in result.output
    assert "rolled back" in result.output
    bare = _audit(str(cut), "--pubkey", str(pub), "--expect-head", kept.split(":")[1], "--json")
    assert bare.exit_code == 1
    payload = json.loads(bare.stdout)
    assert payload["ok"] is False and "does not contain the head" in payload["first_failure"]


def test_expect_head_accepts_grown_ledger(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    rows = _rows(5)
    ledger = Ledger(path, key)
    for row in rows[:3]:
        ledger.append(row)
    assert ledger.anchor().startswith("3:")
    first = _keyed(path, key)
    assert first.exit_code == 0, first.output
    kept = _printed_head(first)
    assert kept == ledger.anchor()
    for row in rows[3:]:
        ledger.append(row)
    ledger.close()
    same = _keyed(path, key, "--expect-head", _printed_head(_keyed(path, key)))
    assert same.exit_code == 0 and "is in the ledger" in same.output
    grown = _keyed(path, key, "--expect-head", kept)
    assert grown.exit_code == 0, grown.output
    assert "2 rows appended since" in grown.output and "head: 5:" in grown.output
    as_json = json.loads(_keyed(path, key, "--expect-head", kept, "--json").stdout)
    assert as_json["ok"] and as_json["grown_since_expected_head"] == 2
    assert as_json["head"].startswith("5:") and as_json["exit_status"] == 0
    assert _keyed(path, key, "--expect-head", kept.split(":")[1]).exit_code == 0  # bare hash


def test_expect_head_at_the_wrong_position_or_malformed(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    ledger = Ledger(path, key)
    for row in _rows(3):
        ledger.append(row)
    head = ledger.anchor()
    ledger.close()
    digest = head.split(":")[1]
    moved = _audit(str(path), "--expect-head", f"2:{digest}")
    assert moved.exit_code == 1 and "inconsistent" in moved.output
    rewritten = _audit(str(path), "--expect-head", "2:" + "f" * 64)
    assert rewritten.exit_code == 1 and "another ledger" in rewritten.output
    other = _audit(str(path), "--expect-head", "f" * 64)
    assert other.exit_code == 1 and "does not contain the head" in other.output
    for bad in ("3:abc", "x:" + digest, "0:" + digest, "g" * 64):
        result = _audit(str(path), "--expect-head", bad)
        assert result.exit_code == 2, (bad, result.output)


def test_m1_seeded_noise_reported_not_private(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    ledger = Ledger(path, key)
    for row in _rows(4, seeded=frozenset({2, 3})):
        ledger.append(row)
    ledger.close()
    result = _audit(str(path))
    assert result.exit_code == 3, result.output
    assert "NOT PRIVATE" in result.output
    assert (
        "round 2: DP noise was seeded (a simulation/replay); its epsilon is not a privacy "
        "guarantee" in result.output
    )
    assert "round 3: DP noise was seeded" in result.output
    assert "round 1: DP noise" not in result.output and "round 4: DP noise" not in result.output
    payload = json.loads(_audit(str(path), "--json").stdout)
    assert payload["ok"] is True and payload["private"] is False
    assert payload["noise_seeded_rounds"] == [2, 3] and payload["exit_status"] == 3
    assert payload["not_private"][0].startswith("round 2: DP noise was seeded")
    # integrity failures outrank it: exit 1
    db = sqlite3.connect(path)
    db.execute("DELETE FROM ledger WHERE seq = 4")
    db.commit()
    db.close()
    assert _audit(str(path)).exit_code == 1


def test_unseeded_and_pre_field_ledgers_stay_private(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    ledger = Ledger(path, key)
    for row in _rows(2):
        assert row["noise_seeded"] is False and row["version"] == 2
        ledger.append(row)
    ledger.close()
    fresh = _keyed(path, key, "--json")
    assert fresh.exit_code == 0
    assert json.loads(fresh.stdout)["private"] is True
    old = tmp_path / "old.ledger"  # rows as the code before the field wrote them
    ledger = Ledger(old, key)
    for row in _rows(2):
        del row["noise_seeded"]
        ledger.append(row | {"version": 1})
    ledger.close()
    result = _keyed(old, key)
    assert result.exit_code == 0, result.output
    assert "2 rows predate the noise_seeded field" in result.output


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_malformed_noise_seeded_value_fails(tmp_path: Path, value: object) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    ledger = Ledger(path, key)
    ledger.append(_rows(1)[0] | {"noise_seeded": value})
    ledger.close()
    result = _audit(str(path))
    assert result.exit_code == 1 and "noise_seeded must be true or false" in result.output


def test_the_report_names_seeded_rounds_and_the_head(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    ledger = Ledger(path, key)
    for row in _rows(2, seeded=frozenset({2})):
        ledger.append(row)
    head = ledger.anchor()
    ledger.close()
    result = CliRunner().invoke(main, ["audit", "report", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "ledger-report.md").read_text()
    assert "**NOT PRIVATE**: the DP noise of round(s) 2 was seeded" in text
    assert f"`{head}`" in text


def test_verify_and_report_of_a_run_without_dp_name_the_missing_dp(tmp_path: Path) -> None:
    """``secagg simulate --mechanism off``: its rows had ``dp: null`` but ``noise_seeded:
    true``; verify and report blamed seeded DP noise (and showed epsilon None), and the
    report linked a plot it never wrote. Still not private (exit 3): released without DP."""
    key = LedgerKey.generate()
    path = tmp_path / "off.ledger"
    ledger = Ledger(path, key)
    for row in _rows(2, seeded=frozenset({1, 2})):
        ledger.append(row | {"dp": None, "privacy": {"epsilon": None, "delta": None}})
    ledger.close()
    for verified in (_keyed(path, key), _audit(str(path))):  # not private outranks unverified
        assert verified.exit_code == 3, verified.output
        assert "NOT PRIVATE: released without differential privacy: no epsilon is claimed" in (
            verified.output
        )
        assert "DP noise was seeded" not in verified.output
        assert "seeded stream" not in verified.output and "epsilon None" not in verified.output
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["audit", "report", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["ledger-report.html", "ledger-report.md"]
    text = (out / "ledger-report.md").read_text()
    assert "released without differential privacy: no epsilon is claimed" in text
    assert "was seeded" not in text and "ledger-report.png" not in text


def _federation_toml(path: Path, *, delta: float = DELTA, rate: float = Q) -> Path:
    names = ", ".join(f'"branch-{i:02d}"' for i in range(20))
    path.write_text(
        f'[federation]\nname = "test"\nclients = [{names}]\ndimension = 4\n'
        f'[sampling]\nkind = "poisson"\nrate = {rate}\n'
        # no colluders assumed: rounds of 2 drawn from 20 plan (a drawn round is sized for
        # the population's colluders since 2026-12-07; 5 % of 20 refused it)
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\ncorrupt_fraction = 0.0\n'
        f'[dp]\nclip = 1.0\nnoise_multiplier = {Z}\ndelta = {delta}\naccountant = "rdp"\n'
    )
    return path


def test_an_unreadable_or_invalid_config_is_a_usage_error(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    ledger = Ledger(path, key)
    for row in _rows(2):
        ledger.append(row)
    ledger.close()
    missing = _audit(str(path), "--config", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2 and "--config" in missing.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[federation]\nname = "test"\nclients = ["a"]\ndimension = 4\n')
    invalid = _audit(str(path), "--config", str(bad))
    assert invalid.exit_code == 2 and "at least 2 clients" in invalid.output


def test_the_report_checks_the_rows_against_the_config(tmp_path: Path) -> None:
    """Rows without a sampling record (older rows) match a config that does not sample
    in what they state; the delta must be the config's. A config that samples cannot
    be checked against rows that do not say how their cohort was drawn: they fail
    (until 2026-12-05 they matched it, the kind, rate and population unchecked)."""
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    ledger = Ledger(path, key)
    for row in _rows(2):
        ledger.append(row)
    ledger.close()
    sampling = _federation_toml(tmp_path / "sampling.toml")  # Poisson at Q < 1
    refused = _keyed(path, key, "--config", str(sampling))
    assert refused.exit_code == 1
    assert "row 1 (round 1): records no dp.sampling but the config samples" in refused.output
    config = _federation_toml(tmp_path / "federation.toml", rate=1.0)
    ok = _keyed(path, key, "--config", str(config), "--json")
    payload = json.loads(ok.output)
    assert ok.exit_code == 0 and payload["rows_checked_against_config"] == 2
    assert payload["rows_without_sampling"] == 2
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["audit", "report", str(path), "--config", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "2 DP rows match the federation config" in (out / "ledger-report.md").read_text()
    other = _federation_toml(tmp_path / "other.toml", delta=1e-6)
    result = CliRunner().invoke(
        main, ["audit", "report", str(path), "--config", str(other), "--out", str(out)]
    )
    text = (out / "ledger-report.md").read_text()
    assert "**FAILED**: row 1 (round 1): accounts at delta 1e-05" in text


def test_verify_without_pubkey_is_unverified_and_exits_4(tmp_path: Path) -> None:
    """Newcomer review 5: ``audit verify LEDGER`` without ``--pubkey`` printed VERIFIED
    with exit 0. The chain is only self-consistent then: anyone can re-sign it."""
    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    ledger = Ledger(path, key)
    for row in _rows(3):
        ledger.append(row)
    ledger.close()
    bare = _audit(str(path))
    assert bare.exit_code == 4, bare.output
    first = bare.output.splitlines()[0]
    assert first.startswith("UNVERIFIED: 3 rows are self-consistent") and "--pubkey" in first
    assert not any(line.startswith("VERIFIED") for line in bare.output.splitlines())
    payload = json.loads(_audit(str(path), "--json").stdout)
    assert payload["verdict"] == "UNVERIFIED" and payload["exit_status"] == 4
    assert payload["key_source"] == "embedded"
    keyed = _keyed(path, key)
    assert keyed.exit_code == 0 and keyed.output.startswith("VERIFIED: 3 rows")
    assert json.loads(_keyed(path, key, "--json").stdout)["verdict"] == "VERIFIED"
    # a forger re-signs the whole ledger with a key of their own: self-consistent, so
    # only the operator's key tells
    forger = LedgerKey.generate()
    forged = tmp_path / "forged.ledger"
    ledger = Ledger(forged, forger)
    for row in _rows(3):
        ledger.append(row)
    ledger.close()
    assert _audit(str(forged)).exit_code == 4
    pem = export_public_key(key.public_key, tmp_path / "operator.pub")
    assert _audit(str(forged), "--pubkey", str(pem)).exit_code == 1
    help_text = CliRunner().invoke(main, ["audit", "verify", "--help"]).output
    assert "4  UNVERIFIED" in help_text


@pytest.mark.parametrize("content", [b"Time,V1,Class\n0,1.0,0\n", b"", b"\x00" * 4096])
def test_report_on_a_non_ledger_file_is_one_line_exit_2(tmp_path: Path, content: bytes) -> None:
    """Newcomer review 4: ``audit report creditcard.csv`` ended in a LedgerError traceback.
    Since 2026-12-06 the wrong file is a usage mistake (exit 2), as a missing one is, not
    a ledger that failed (tests/apps/test_audit_not_a_ledger.py)."""
    csv = tmp_path / "creditcard.csv"
    csv.write_bytes(content)
    result = CliRunner().invoke(main, ["audit", "report", str(csv), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {csv} is not a privacy ledger: it is")
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(main, ["audit", "report", str(tmp_path / "nope.sqlite")])
    assert missing.exit_code == 2 and "no ledger at" in missing.output


def test_every_audit_option_has_help_text() -> None:
    """Newcomer review 9: ``audit verify --json`` and ``audit report --pubkey`` (and
    others) had no help text."""
    import click

    from secagg.apps.audit.cli import audit

    assert isinstance(audit, click.Group)
    missing = [
        f"audit {name} {'/'.join(param.opts)}"
        for name, command in audit.commands.items()
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert missing == []
    report_help = CliRunner().invoke(main, ["audit", "report", "--help"]).output
    assert "--pubkey" in report_help and "UNVERIFIED" in report_help


def test_report_of_a_not_private_ledger_does_not_read_as_verified(tmp_path: Path) -> None:
    """CLI audit 2026-12-05, 1: ``audit report --pubkey`` of a ledger ``verify`` calls NOT
    PRIVATE (exit 3) printed only ``verdict: VERIFIED: ...``; report still exits 0
    (written), but its first terminal line now says NOT PRIVATE."""
    key = LedgerKey.generate()
    path = tmp_path / "seeded.ledger"
    ledger = Ledger(path, key)
    for row in _rows(2, seeded=frozenset({2})):
        ledger.append(row)
    ledger.close()
    assert _keyed(path, key).exit_code == 3
    pem = path.with_name(path.name + ".pub")
    result = CliRunner().invoke(
        main, ["audit", "report", str(path), "--pubkey", str(pem), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("verdict: NOT PRIVATE: the DP noise of round(s) 2 was seeded")
    assert any(line.strip().startswith("VERIFIED: every row is linked") for line in lines[1:])
    assert "**" not in result.stderr and "`" not in result.stderr


@pytest.mark.parametrize("content", [b"", b"\x00" * 4096, b"Time,V1,Class\n0,1.0,0\n"])
def test_verify_json_of_a_file_that_is_no_ledger_is_one_json_object(
    tmp_path: Path, content: bytes
) -> None:
    """CLI audit 2026-12-05, 2: ``verify --json`` of a file that is no ledger printed a
    plain FAILED line on stderr and no JSON, though --help promises one object. Since
    2026-12-06 it is a usage mistake (exit 2), as a missing ledger is; a damaged ledger
    still FAILs (tests/apps/test_audit_verify_json_keys.py)."""
    path = tmp_path / "rand.sqlite"
    path.write_bytes(content)
    pem = export_public_key(LedgerKey.generate().public_key, tmp_path / "k.pub")
    result = _audit(str(path), "--pubkey", str(pem), "--json")
    assert result.exit_code == 2, result.output
    payload = json.loads(result.stdout)
    assert payload["verdict"] == "USAGE ERROR" and payload["exit_status"] == 2
    assert payload["ok"] is False
    assert payload["first_failure"].startswith(f"{path} is not a privacy ledger: it is")
    plain = _audit(str(path), "--pubkey", str(pem))
    assert plain.exit_code == 2 and plain.stderr.startswith(f"Error: {path} is not a privacy")


# --- the empirical audit's figures, rounded toward the side the reader relies on ------


def _canary_audit(**figures: float) -> object:
    from secagg.apps.audit.empirical import EmpiricalAudit

    base: dict[str, object] = dict(
        epsilon_lower=0.5329, confidence=0.95, method="Clopper-Pearson", claimed_epsilon=1.0004,
        accountant_epsilon=1.0004, consistent=True, threshold_fpr=0.01, hits=30,
        tpr_lower=0.4, held_out_fpr=0.01, null_check_p=0.5, epsilon_estimate=0.70004,
        mu_estimate=0.8, delta=1.2345641e-5, canaries=100, dimension=64, rounds=5,
        noise_multiplier=1.0, backend="secagg+", inserted_cosine_mean=0.1,
        held_out_cosine_mean=0.0, held_out_cosine_std=0.1,
    )  # fmt: skip
    base.update(figures)
    return EmpiricalAudit(**base)  # type: ignore[arg-type]


def _empirical_text(monkeypatch: pytest.MonkeyPatch, audit: object, *args: str) -> str:
    import secagg.apps.audit.empirical as empirical

    monkeypatch.setattr(empirical, "run_canary_audit", lambda **_: audit)
    return CliRunner().invoke(main, ["audit", "empirical", *args]).output


def test_the_empirical_audit_rounds_its_bounds_toward_the_safe_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """To the nearest (.3f): the accountant's bound 1.0004 read 1.000, the estimate
    0.70004 read 0.700, delta 1.2345641e-5 read 1.23456e-05 (all below what they are)
    and the lower bound 0.5329 read 0.533, above what the canaries showed."""
    text = _empirical_text(monkeypatch, _canary_audit(), "--claimed-epsilon", "1.0004")
    assert "empirical lower bound           0.532 " in text
    assert "accountant's upper bound        1.001  (delta = 1.23457e-05)" in text
    assert "claimed epsilon                 1.001" in text
    assert "Gaussian-model estimate         0.701 " in text
    assert "CONSISTENT: the lower bound does not exceed the claimed epsilon 1.001" in text


def test_a_failed_empirical_audit_shows_its_bound_above_the_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lower bound of 1.0004 above a claim of 1.0003 printed "the lower bound 1.000
    exceeds the claimed epsilon 1.000"; rounded apart at 3 decimals it would read 1.000
    and 1.001, which contradicts itself, so the line shows the digits that part them."""
    audit = _canary_audit(epsilon_lower=1.0004, claimed_epsilon=1.0003, consistent=False)
    text = _empirical_text(monkeypatch, audit)
    line = next(x for x in text.splitlines() if x.startswith("FAIL"))
    low, high = (float(w) for w in re.findall(r"\d+\.\d+", line))
    assert low > high and low <= 1.0004 and high >= 1.0003


def test_verify_prints_the_epsilon_rounded_up_at_its_delta_and_json_keeps_it_exact(
    tmp_path: Path,
) -> None:
    """Review 2026-12-05: the verified line printed ``cumulative epsilon`` as the bare
    float (every digit), without the delta it holds at. It now reads as ``audit
    report``'s budget line: 3 decimals rounded up (never below what the ledger claims)
    and the delta; ``--json`` keeps the exact figure."""
    from secagg.dp.display import shown

    key = LedgerKey.generate()
    path = tmp_path / "state.ledger"
    ledger = Ledger(path, key)
    rows = _rows(3)
    for row in rows:
        ledger.append(row)
    ledger.close()
    exact = json.loads(_keyed(path, key, "--json").stdout)["epsilon"]
    assert exact == rows[-1]["privacy"]["epsilon"]  # JSON: the figure as claimed
    for run in (_keyed(path, key), _audit(str(path))):  # VERIFIED and UNVERIFIED lines
        first = run.output.splitlines()[0]
        assert f"cumulative epsilon {shown(exact, 3)} at delta 1e-05" in first, first
        assert repr(exact) not in run.output
    printed = float(shown(exact, 3))
    assert exact <= printed < exact + 1e-3  # rounded up, never down
