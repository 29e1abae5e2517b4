"""``audit verify`` says when a ledger's rows name more than one federation.

Before: every row records its federation's name, but without ``--config`` nothing read
it, so a ledger whose rounds 1-2 named one federation and 3-4 another verified with
no word of it (VERIFIED, the claim composed over all four). A federation renamed on a
restart writes exactly that, and composing its rounds into one claim is right, so it
is not a failure; but that the rows are one federation's is the server's word, and the
auditor now reads which rows name which, and that ``--config`` holds them to one name.
"""

from __future__ import annotations

import json
from pathlib import Path

from _ledgers import central_client_rows, write_central_config, write_ledger
from click.testing import CliRunner

from secagg.apps.audit.cli import _expected
from secagg.apps.cli import main
from secagg.ledger import export_public_key
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b")]


def _ledger(tmp_path: Path, names: list[str]) -> tuple[Path, object, float]:
    rows, epsilon = central_client_rows(COHORTS[: len(names)], Z, DELTA)
    path, key = write_ledger(
        tmp_path / "l.ledger",
        [row | {"federation": name} for row, name in zip(rows, names, strict=True)],
    )
    return path, key, epsilon


def _federation_notes(notes: list[str]) -> list[str]:
    return [note for note in notes if "federations:" in note]


def test_a_renamed_federation_verifies_with_a_note_naming_which_rows_name_which(
    tmp_path: Path,
) -> None:
    path, key, epsilon = _ledger(tmp_path, ["branches", "branches", "renamed", "renamed"])
    result = verify_ledger(path, key.public_key)  # type: ignore[attr-defined]
    assert result.ok, result.failure
    assert result.epsilons[-1][1] is not None
    assert abs(result.epsilons[-1][1] - epsilon) <= 1e-9 * epsilon  # all four composed
    (note,) = _federation_notes(result.notes)
    assert "the rows name 2 federations: 'branches' (rounds 1-2), 'renamed' (rounds 3-4)" in note
    assert "--config" in note


def test_one_federation_s_ledger_has_no_such_note(tmp_path: Path) -> None:
    path, key, _ = _ledger(tmp_path, ["branches"] * 4)
    result = verify_ledger(path, key.public_key)  # type: ignore[attr-defined]
    assert result.ok and _federation_notes(result.notes) == []


def test_many_alternating_hostile_names_are_listed_in_one_short_line(tmp_path: Path) -> None:
    names = ["x" * 500, "b\nc", "x" * 500, "d"]
    path, key, _ = _ledger(tmp_path, names)
    result = verify_ledger(path, key.public_key)  # type: ignore[attr-defined]
    (note,) = _federation_notes(result.notes)
    assert "the rows name 3 federations:" in note and "\n" not in note
    assert "x" * 41 not in note and len(note) < 700
    assert f"a name no config allows ('{'x' * 40}'...) (round 1)" in note
    assert "a name no config allows ('b?c') (round 2)" in note and "'d' (round 4)" in note


def test_a_name_no_config_allows_puts_no_markdown_into_the_report(tmp_path: Path) -> None:
    """The report escapes what rows record in its prose; a note carried a hostile name
    as written, so ``**x**`` came out bold and ``[a](b)`` a link."""
    from secagg.ledger.report import build_report

    hostile = "<b>[VERIFIED](https://example.com)**x**`y`"
    path, key, _ = _ledger(tmp_path, ["branches", hostile])
    text, _ = build_report(path, key.public_key)  # type: ignore[attr-defined]
    (line,) = [line for line in text.splitlines() if "federations:" in line]
    for markup in ("**x**", "[VERIFIED]", "](", "`y`", "<b>"):
        assert markup not in line
    assert "a name no config allows ('?b?" in line


def test_the_command_line_prints_the_note_and_its_json_carries_it(tmp_path: Path) -> None:
    path, key, _ = _ledger(tmp_path, ["branches", "renamed", "renamed"])
    pub = tmp_path / "ledger.pub"
    export_public_key(key.public_key, pub)  # type: ignore[attr-defined]
    runner = CliRunner()
    text = runner.invoke(main, ["audit", "verify", str(path), "--pubkey", str(pub)])
    assert text.exit_code == 0, text.output
    assert "VERIFIED" in text.output
    assert (
        "note: the rows name 2 federations: 'branches' (round 1), 'renamed' (rounds 2-3)"
        in text.output
    )
    out = runner.invoke(main, ["audit", "verify", str(path), "--pubkey", str(pub), "--json"])
    assert out.exit_code == 0, out.output
    assert len(_federation_notes(json.loads(out.output)["notes"])) == 1


def test_with_the_config_the_first_other_name_fails_as_before(tmp_path: Path) -> None:
    path, key, _ = _ledger(tmp_path, ["test", "test", "renamed"])
    config = write_central_config(
        tmp_path / "f.toml", name="test", clients=["a", "b", "c", "d"], rate=0.5, z=Z,
        delta=DELTA,
    )  # fmt: skip
    result = verify_ledger(path, key.public_key, expected=_expected(str(config)))  # type: ignore[attr-defined]
    assert not result.ok
    assert "row 3 (round 3): names federation 'renamed'" in str(result.failure)
