"""A refusal the transport only inferred, after this server accepted the certificate in
this run, is redialled like a lost connection (operator pass of 2026-12-04).

Before, ``serve_sessions`` stopped at once on any ``NotAccepted``: a server that died
during a branch's two redial handshakes (read as a certificate refusal) ended every
branch of the federation for good, though the same certificate had a session a moment
earlier. A refusal the server said (``inferred`` False) still ends the party at once,
and so does an inferred one at the first dial (nothing was ever accepted).
"""

from __future__ import annotations

import logging

import pytest

from secagg.runtime.redial import serve_sessions
from secagg.transport.base import NotAccepted, NotConnected


class Inferred(NotAccepted):
    inferred = True


class Said(NotAccepted):
    pass


def _run(dials: list[object]) -> str:
    """serve_sessions over a scripted list: each dial returns a session (a str served
    by returning it, or losing it if it is "lost") or raises the error listed."""
    script = iter(dials)

    def dial(timeout: float) -> object:
        del timeout
        step = next(script)
        if isinstance(step, BaseException):
            raise step
        return step

    def serve(session: object) -> str:
        if session == "lost":
            raise NotConnected("connection lost")
        return str(session)

    def gave_up(message: str, cause: NotConnected) -> NotConnected:
        return NotConnected(message)

    return serve_sessions(
        logging.getLogger("test"),
        "branch-a",
        dial,  # type: ignore[arg-type]
        serve,  # type: ignore[arg-type]
        opened=lambda: 1,
        gave_up=gave_up,
        connect_timeout=60.0,
        give_up_after=60.0,
        reconnect=True,
    )


def test_an_inferred_refusal_after_a_lost_session_is_redialled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("secagg.runtime.redial.time.sleep", lambda seconds: None)
    assert _run(["lost", Inferred("closed twice"), "served"]) == "served"


def test_a_refusal_the_server_said_or_one_at_the_first_dial_ends_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("secagg.runtime.redial.time.sleep", lambda seconds: None)
    with pytest.raises(Said):
        _run(["lost", Said("revoked"), "served"])
    with pytest.raises(Inferred):
        _run([Inferred("closed twice"), "served"])
