"""A key holder asked to decrypt a far-future round: served, and a limit from then on.

Review (2026-12-06): a hostile (or buggy) server sends a key request and a decryption
request for round 2^32 - 1, the largest the wire's round field holds. Nothing tells it
from an honest round (the server numbers the rounds, and rounds that abort before their
key request skip numbers), so the key holder serves it, and its record, which refuses
every round at or below the last one decrypted (the replay defence), then refuses every
honest round after it, across restarts. No fix keeps that defence whole: a record that
took lower rounds again would have to keep every round it decrypted (the file it grew
without end before) and the server could still pick which numbers to burn. As for the
branch, it is a limit, documented in docs/deployment.md ("A far-future round number")
with the key holder's own remedy: these tests pin what that paragraph says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from _keyholder_rounds import decryption_request, key_request

from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession, opened_path
from secagg.aggregation.keyholder_policy import RoundAlreadyServed, RoundSuperseded

N, D = 3, 8
FED = "far-future"
#: the largest round number the wire's u32 round field carries
LAST_WIRE_ROUND = 2**32 - 1
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def _backend() -> CKKSBackend:
    return CKKSBackend(max_clients=N)


def _start(key: Path) -> KeyHolderSession:
    """A key holder process over ``key`` and its record ``<key>.state``."""
    if not key.exists():
        _backend().make_helper_key(key)
    return _backend().helper({"key": str(key), "federation": FED, "max_decryptions": 10})


def test_a_far_future_decryption_is_served_and_then_refuses_the_honest_rounds(
    tmp_path: Path,
) -> None:
    """Round 11 decrypted honestly, then round 2^32 - 1: served (one decryption spent).
    The honest round 12 is then refused at its key request, naming both rounds, and
    still after a restart over the same record."""
    key = tmp_path / "kh.key"
    holder = _start(key)
    holder.handle(
        decryption_request(_backend(), holder, 11, clients=N, dimension=D, federation=FED),
        round_number=11,
    )
    far = decryption_request(
        _backend(), holder, LAST_WIRE_ROUND, clients=N, dimension=D, federation=FED
    )
    assert holder.handle(far, round_number=LAST_WIRE_ROUND)  # served
    assert holder.record.last_round == LAST_WIRE_ROUND
    assert holder.decryptions == 2
    for process in (holder, _start(key)):  # the same process, then a restart
        with pytest.raises(RoundAlreadyServed) as refused:
            process.handle(key_request(_backend(), N, D, FED), round_number=12)
        assert "12" in str(refused.value)
        assert str(LAST_WIRE_ROUND) in str(refused.value)


def test_a_far_future_key_request_alone_refuses_the_honest_rounds_until_opened_is_removed(
    tmp_path: Path,
) -> None:
    """A key request of round 2^32 - 1 alone (nothing decrypted) opens that round, and
    the honest round 12 is refused as superseded, after a restart too (the opened round
    is on disk). The documented remedy: with the key holder stopped, remove
    ``<state>.opened`` alone; the restart serves round 12 (the record, which never held
    the bogus round, still refuses what it refused)."""
    key = tmp_path / "kh.key"
    holder = _start(key)
    holder.handle(key_request(_backend(), N, D, FED), round_number=LAST_WIRE_ROUND)
    assert holder.decryptions == 0
    for process in (holder, _start(key)):
        with pytest.raises(RoundSuperseded, match=f"opened round {LAST_WIRE_ROUND} already"):
            process.handle(key_request(_backend(), N, D, FED), round_number=12)
    opened_path(tmp_path / "kh.key.state").unlink()
    restarted = _start(key)
    restarted.handle(
        decryption_request(_backend(), restarted, 12, clients=N, dimension=D, federation=FED),
        round_number=12,
    )
    assert (restarted.record.last_round, restarted.decryptions) == (12, 1)


def test_the_deployment_guide_states_the_key_holders_far_future_limit() -> None:
    """The limit and its remedy are stated for the key holder beside the branch's: a
    fresh record over the same key would reset the lifetime cap and let the rounds
    already decrypted be decrypted again, so the remedy is a new key."""
    text = " ".join(DOCS.read_text(encoding="utf-8").split())
    branch = text.index("**A far-future round number** (a limit, not a fix)")
    holder = text.index("**A far-future round number, for the key holder** (a limit, too)")
    assert 0 < holder - branch < 3000  # beside the branch's paragraph
    paragraph = text[holder : holder + 2000]
    for said in (
        "decryption request of round 4294967295",
        "refuses every round at or below it",
        "secagg keyholder-init",
        "max_decryptions",
        "never a fresh state file over the same key",
        "remove `<state>.opened` alone",
    ):
        assert said in paragraph, said
