"""Whose failure a send's error is: the party's (a dropout of the round), or the server's
own (it stops, saying so).

Second review (2026-12-07) of the rule that an OS error of a send to a branch makes that
branch a dropout (merge 8dcdad5). Two sides:

- A branch whose link makes a send to it fail (a timeout, a reset, a closed session) is
  a dropout of the round; it never stops the server nor keeps the others' round from
  completing (no single branch can stop the server).
- Finding: an OS error that says the *server's* resources failed (EMFILE: its descriptors;
  ENOBUFS, ENOMEM, ENOSPC, ...) was taken for the branch's too. With every round start
  failing so, each round lost every branch, aborted "below the threshold" with a signed
  ledger row blaming the branches, and after ``max_consecutive_aborts`` the run stopped
  saying only "5 rounds aborted in a row": nothing said the server's own descriptors were
  exhausted. Now such an error stops the server in the round it happens, named as an
  error outside its state and ledger writes (logged, stored as the round's abort reason
  and told to the parties), as a failing receive does.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from _ledgered_federation import (
    NAMES,
    RecordingHub,
    ledger_path,
    ledgered_config,
    start_branches,
    stored_reports,
)
from _threads import BOUND

from secagg.ledger.chain import read_chain
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.wire import FederationEnd, RoundStart, decode_message
from secagg.transport.base import NotConnected


class _StartsFail(RecordingHub):
    """Every round start to one of ``names`` raises a copy of ``error`` (after it is
    recorded as attempted, never queued)."""

    def __init__(self, names: set[str], error: OSError) -> None:
        super().__init__()
        self.names, self.error, self.raised = names, error, 0

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        if name in self.names and isinstance(decode_message(b"".join(parts)), RoundStart):
            self.raised += 1
            raise type(self.error)(*self.error.args)
        super().send_to_session(name, session, parts)


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError("send timed out"),
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        NotConnected("client 'branch-0' closed its session"),
    ],
    ids=["timeout", "reset", "closed"],
)
def test_a_branch_every_send_to_fails_is_its_own_dropout_and_the_federation_finishes(
    tmp_path: Path, error: OSError
) -> None:
    """The round start to branch-0 fails (a threshold of 4 of the 5), by each kind of
    error a send to a party can raise: it is the round's dropout, the other four complete
    the round, the server does not stop on it and the federation finishes. (With a
    whole-cohort threshold its rounds abort until it is benched: test_round_error_cause.)"""
    config = ledgered_config(tmp_path, rounds=1, dropout_fraction=0.2)
    hub = _StartsFail({NAMES[0]}, error)
    parties = start_branches(hub, config, until_end=True)
    state = open_server_state(config, init=True)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        results = server.run(wait_for_clients=BOUND)
        finished = server.finished
    finally:
        state.close()
    for name, party in parties.items():
        assert party.done.wait(BOUND), name
    assert hub.raised == 1
    assert finished and server.stop_reason is None, server.stop_reason
    assert [(r.number, r.status, r.contributed) for r in results] == [
        (1, "complete", tuple(NAMES[1:]))
    ]


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENOBUFS], ids=["EMFILE", "ENOBUFS"])
def test_a_send_failing_on_the_servers_own_resources_stops_it_naming_the_cause(
    tmp_path: Path, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Every round start fails with an OS error of the server's own resources. Before:
    each round's branches were all dropouts, five rounds aborted with rows blaming them,
    and ``run`` returned "5 rounds aborted in a row" (no word of the cause). Now the
    server stops in round 1 with that error: the stored reason and the log name it, the
    parties are told it stopped outside its writes, and no round's row blames a branch."""
    config = ledgered_config(tmp_path, rounds=2)
    hub = _StartsFail(set(NAMES), OSError(code, "the server's own resources"))
    parties = start_branches(hub, config, until_end=True)
    state = open_server_state(config, init=True)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        with caplog.at_level(logging.ERROR, logger="secagg.server"):
            with pytest.raises(OSError) as stopped:
                server.run(wait_for_clients=BOUND)
    finally:
        state.close()
    for name, party in parties.items():  # each returns on the end, not on its --idle
        assert party.done.wait(BOUND), name
    assert stopped.value.errno == code
    expected = (
        "the server stopped on an error outside its state and ledger writes: "
        f"OSError: [Errno {code}] the server's own resources"
    )
    assert [report.get("reason") for report in stored_reports(config)] == [expected]
    assert any(f"round 1: {expected}" in r.getMessage() for r in caplog.records)
    told = {end.reason for end in hub.ends()}
    assert told == {
        "the server stopped on an error in round 1 outside its state and ledger writes "
        "(the server's log has the cause)"
    }, told
    assert read_chain(ledger_path(config)).rows == []


class _EndFails(RecordingHub):
    """The federation's end to branch-0 raises OSError(EMFILE), every time."""

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        self._fail_an_end(name, parts)
        super().send_to_session(name, session, parts)

    def send(self, name: str, payload: bytes) -> None:
        self._fail_an_end(name, [payload])
        super().send(name, payload)

    @staticmethod
    def _fail_an_end(name: str, parts: Sequence[bytes]) -> None:
        if name == NAMES[0] and isinstance(decode_message(b"".join(parts)), FederationEnd):
            raise OSError(errno.EMFILE, "Too many open files")


def test_an_end_that_fails_on_the_servers_own_resources_leaves_the_run_finished(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The federation finished; its end to branch-0 fails with EMFILE. The run still
    returns finished (the rounds are recorded: a local error of the last announcement
    is no failed run), the error is logged, and the other branches are told."""
    config = ledgered_config(tmp_path, rounds=1)
    hub = _EndFails()
    parties = start_branches(hub, config, until_end=True)
    state = open_server_state(config, init=True)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        with caplog.at_level(logging.ERROR, logger="secagg.server"):
            results = server.run(wait_for_clients=BOUND)
        finished = server.finished
    finally:
        state.close()
    for name in NAMES[1:]:  # told: each returns on the end
        assert parties[name].done.wait(BOUND), name
    hub.disconnect(NAMES[0])  # never told: its session ends under it
    assert parties[NAMES[0]].done.wait(BOUND)
    assert finished and [r.status for r in results] == ["complete"]
    assert {name for name, m in hub.sent if isinstance(m, FederationEnd)} == set(NAMES[1:])
    assert any(
        "could not be announced to branch-0 (OSError: [Errno 24] Too many open files)"
        in r.getMessage()
        for r in caplog.records
    )
