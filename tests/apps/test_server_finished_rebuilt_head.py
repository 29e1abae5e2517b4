"""``secagg server`` on a finished federation whose last ledger row was lost says that it
rebuilt the row, and prints the ledger's new head, as a run that ends its rounds does.

Review of the deferred ledger rebuild (2026-12-07): ``serve`` rebuilds a finished
federation's lost row (in the server's constructor, or, where the row reads DP-SGD
replays, in ``FederationServer.backfill_ledger``) without binding, and the command
then printed only "federation ... is already finished: ...; nothing to do". The ledger
had a new row and a new head, which auditors pass to ``secagg audit verify
--expect-head``: a resumable run prints "ledger head SEQ:HASH (publish it: ...)" as it
ends, the finished path printed nothing of it, and said nothing had been done.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _finished_federation import finished_with_the_row_lost
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.config import FederationConfig


@pytest.mark.parametrize("record_level", [False, True], ids=["no-dp", "record-level"])
def test_a_finished_federation_that_rebuilt_its_row_prints_the_new_head(
    tmp_path: Path, record_level: bool
) -> None:
    with finished_with_the_row_lost(tmp_path, record_level) as toml:
        config = FederationConfig.load(toml)
        result = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
    assert result.exit_code == 0, result.output
    key = LedgerKey.load(Path(config.server.state + ".ledger-key"))
    audit = verify_ledger(Path(config.server.state + ".ledger"), key.public_key)
    assert audit.ok, audit.first_failure
    assert [(row.entry["round"], row.entry["reconstructed"]) for row in audit.chain.rows] == [
        (1, True)
    ]
    ledger = Ledger(Path(config.server.state + ".ledger"), key)
    try:
        head = ledger.anchor()
    finally:
        ledger.close()
    assert result.stdout.strip().splitlines() == [
        f"federation cli is already finished: 1 of 1 rounds complete (state "
        f"{config.server.state}); its ledger lacked the row of round 1, rebuilt now from "
        "the state",
        f"ledger head {head} (publish it: auditors pass it to secagg audit verify "
        "--expect-head, which then detects a ledger cut back)",
    ]


def test_the_printed_head_is_what_audit_verify_takes_as_expect_head(tmp_path: Path) -> None:
    """The head the finished path prints is the token ``secagg audit verify
    --expect-head`` takes (the auditor's copy of the line), and it is the head after
    the rebuild: the verify passes against the ledger as it is and says the head is
    there."""
    with finished_with_the_row_lost(tmp_path, record_level=True) as toml:
        config = FederationConfig.load(toml)
        result = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip().splitlines()[-1]
    assert printed.startswith("ledger head "), result.stdout
    head = printed.split()[2]  # as an auditor copies it from the line
    state = config.server.state
    audit = CliRunner().invoke(
        main,
        [
            "audit",
            "verify",
            state + ".ledger",
            "--pubkey",
            state + ".ledger-key.pub",
            "--expect-head",
            head,
            "--config",
            str(toml),
        ],
    )
    assert audit.exit_code == 0, audit.output
    assert f"expected head {head} is in the ledger" in audit.stdout, audit.stdout
    assert head.startswith("1:"), head  # the rebuilt row's: one row, not the genesis
