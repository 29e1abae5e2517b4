"""What docs/deployment.md tells an operator about the protocol's records matches what
the protocol does (docs/protocol.md)."""

from __future__ import annotations

from pathlib import Path

_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def test_a_wrong_share_record_is_a_disputed_pair_that_excludes_nobody() -> None:
    """The guide said a wrong share's "holder is recorded": since the unmasking change
    of 2026-12-04, ``ServerReport.inconsistent_shares`` records a disputed pair (the
    holder or the owner deviated; without verifiable secret sharing the server cannot
    tell which) and excludes nobody. An operator reading "holder" would blame, and
    perhaps drop, an honest branch whose owner dealt it a wrong share."""
    text = " ".join(_GUIDE.read_text().split())
    (bullet,) = [part for part in text.split("- **") if part.startswith("One hostile branch")]
    assert "holder is recorded" not in bullet
    assert "`inconsistent_shares`" in bullet
    assert "disputed" in bullet and "the owner dealt it one" in bullet
    assert "nobody is excluded" in bullet
