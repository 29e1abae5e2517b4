"""A revocation list unreadable for a moment is bridged by the last good one, briefly.

Transport review (2026-12-05): :class:`PeerVerifier` re-reads ``revoked.json`` at every
identification, and a list that could not be read failed closed at once. A hand edit
that rewrites the file in place (truncate, then write) is unreadable for a moment, and
the server's re-check of its sessions then ended every open session, aborting the round
in flight. Now, for at most ``revocation_grace`` seconds from the first failed read,
the last list read is used (one WARNING), and after that every peer is refused. A file
that parses but is not a revocation list is refused at once, and a list unreadable at
start is still fatal. The clock is the verifier's own, injected: no sleeps.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport.certs import MissingRevocationList, PeerRefused, RevocationListError


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    devca.init_ca(directory)
    for name in ("branch-a", "branch-b"):
        devca.issue_client(directory, name)
    return directory


def _pem(ca_dir: Path, name: str) -> bytes:
    return (ca_dir / "clients" / f"{name}.pem").read_bytes()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "using the last list read" in r.getMessage()
    ]


def test_a_half_written_list_is_bridged_by_the_last_good_one(
    ca_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    devca.revoke(ca_dir, "branch-b")
    verifier = certs.PeerVerifier(ca_dir)  # the default grace, the real clock
    listing = ca_dir / "revoked.json"
    good = listing.read_bytes()
    listing.write_bytes(good[: len(good) // 2])  # an editor half-way through its write

    with caplog.at_level(logging.WARNING, logger="secagg.transport.certs"):
        assert verifier.identify(_pem(ca_dir, "branch-a")).name == "branch-a"
        with pytest.raises(PeerRefused, match="revoked"):  # the last list still holds
            verifier.identify(_pem(ca_dir, "branch-b"))
        listing.unlink()  # deleted and not yet written back
        assert verifier.identify(_pem(ca_dir, "branch-a")).name == "branch-a"
    assert len(_warnings(caplog)) == 1  # once per episode, not per peer
    assert "not valid JSON" in _warnings(caplog)[0]


def test_a_list_that_stays_unreadable_fails_closed_after_the_grace(
    ca_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = _Clock()
    verifier = certs.PeerVerifier(ca_dir, revocation_grace=30.0, clock=clock)
    listing = ca_dir / "revoked.json"
    good = listing.read_bytes()
    with caplog.at_level(logging.WARNING, logger="secagg.transport.certs"):
        listing.unlink()
        assert verifier.identify(_pem(ca_dir, "branch-a")).name == "branch-a"
        clock.now += 29.5
        assert verifier.identify(_pem(ca_dir, "branch-a")).name == "branch-a"
        clock.now += 0.5
        with pytest.raises(RevocationListError, match="failing closed") as closed:
            verifier.identify(_pem(ca_dir, "branch-a"))
        assert "not found" in str(closed.value) and "\n" not in str(closed.value)
        listing.write_bytes(good)  # written back: reads again, the grace is whole again
        assert verifier.identify(_pem(ca_dir, "branch-a")).name == "branch-a"
        listing.write_bytes(b"")
        clock.now += 1000.0
        assert verifier.identify(_pem(ca_dir, "branch-a")).name == "branch-a"
    assert len(_warnings(caplog)) == 2  # one per episode


def test_a_revocation_during_the_edit_takes_effect_once_it_reads(ca_dir: Path) -> None:
    verifier = certs.PeerVerifier(ca_dir)
    listing = ca_dir / "revoked.json"
    listing.write_bytes(b'{"format": "secagg-revo')
    assert verifier.identify(_pem(ca_dir, "branch-b")).name == "branch-b"
    listing.write_text(certs.RevocationList(frozenset({"branch-b"}), frozenset()).to_json())
    with pytest.raises(PeerRefused, match="revoked"):  # the edit done: it counts at once
        verifier.identify(_pem(ca_dir, "branch-b"))


@pytest.mark.parametrize(
    "replacement",
    [
        {"format": "something-else/1"},
        {"format": "secagg-revocations/1", "names": "branch-b"},
        ["branch-b"],
    ],
)
def test_a_list_replaced_by_another_document_fails_closed_at_once(
    ca_dir: Path, replacement: object
) -> None:
    verifier = certs.PeerVerifier(ca_dir)
    listing = ca_dir / "revoked.json"
    listing.write_text(json.dumps(replacement))
    with pytest.raises(RevocationListError):
        verifier.identify(_pem(ca_dir, "branch-a"))
    listing.write_bytes(b"{")  # then half-written: no grace follows a foreign document
    with pytest.raises(RevocationListError):
        verifier.identify(_pem(ca_dir, "branch-a"))


def test_an_unreadable_list_at_start_is_fatal(ca_dir: Path) -> None:
    listing = ca_dir / "revoked.json"
    listing.write_bytes(b'{"format"')
    with pytest.raises(RevocationListError, match="not valid JSON"):
        certs.PeerVerifier(ca_dir)
    listing.unlink()
    with pytest.raises(MissingRevocationList):
        certs.PeerVerifier(ca_dir)
