"""A message whose fields are not of their declared types is refused, typed, unchanged.

The codec only ever builds well-typed messages, but both roles take message objects
(a transport or a test hands them in directly), and they trusted every field's type.
Driven at every phase of a passive and an active round (client 0's incoming message
and its reply to the server), a field of the wrong type did one of three things:

* failed as a bare ``TypeError``/``AttributeError``/``ValueError`` deep in a handler
  (a ``str`` key, ``None`` for the share tuple, a list of ints for the entries);
* was accepted, and failed later and elsewhere: a ``str`` self-mask commitment was
  stored, and the unmasking close then raised ``TypeError`` from ``compare_digest``,
  leaving the round stuck in its last phase; a passive advertisement's signature of
  any type was relayed into every neighbour's key directory, which could then not be
  encoded; a setup with ``active=1.5`` ran as active;
* or, for a setup's round id of another length than 16 bytes, was accepted: the
  client then ran a round whose every reply the codec refuses.

Now each role checks every field against the type the codec gives it
(:func:`secagg.protocol.messages.check_fields`) before anything else, and a client
checks the setup's round id length, so each of these is a ``ProtocolError`` that
changes nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from _harness import SteppedRound, fingerprint

from secagg.errors import ProtocolError
from secagg.protocol import ServerPhase
from secagg.protocol.messages import Message, RoundSetup

#: values of the wrong type for a field holding ``like`` (a field's genuine value)
_INTS: tuple[Any, ...] = (True, 1.0, None, "1", np.float64(1.0))


def _wrong_values(like: object) -> list[object]:
    if isinstance(like, bool):
        return [1, 1.5, None, "yes"]
    if isinstance(like, int):  # GraphKind too (an IntEnum): a plain int is not one
        return [*_INTS, int(like)] if type(like) is not int else list(_INTS)
    if isinstance(like, bytes):
        return [like.decode("latin-1"), None, list(like), bytearray(like)]
    if isinstance(like, str):
        return [like.encode(), None]
    if isinstance(like, np.ndarray):
        return [like.tolist(), None]
    if isinstance(like, tuple):
        out: list[object] = [list(like), None, "abc", (None,)]
        if like:
            out.append((like[0], 1.5))
            first = like[0]
            if dataclasses.is_dataclass(first):  # a record with one field mistyped
                for name, value in vars(first).items():
                    for wrong in _wrong_values(value)[:2]:
                        out.append((dataclasses.replace(first, **{name: wrong}), *like[1:]))
        return out
    raise AssertionError(f"no wrong values for {type(like).__name__}")


def _round_at(active: bool, steps: int) -> SteppedRound:
    r = SteppedRound(5, 3, active=active)
    for _ in range(steps):
        r.step()
    return r


def _cases() -> list[tuple[bool, int, str]]:
    return [
        (active, steps, side)
        for active in (False, True)
        for steps in range(5 if active else 4)
        for side in ("client", "server")
    ]


@pytest.mark.parametrize(("active", "steps", "side"), _cases())
def test_every_mistyped_field_of_every_message_is_refused_unchanged(
    active: bool, steps: int, side: str
) -> None:
    failures: list[str] = []
    probe = _round_at(active, steps)
    genuine: Message = (
        probe.message_for(0)
        if side == "client"
        else next(m for m in probe.clients_reply() if m.sender == 0)
    )
    for field in dataclasses.fields(genuine):
        for wrong in _wrong_values(getattr(genuine, field.name)):
            r = _round_at(active, steps)  # a fresh round: an accepted message changes it
            message = (
                r.message_for(0)
                if side == "client"
                else next(m for m in r.clients_reply() if m.sender == 0)
            )
            target: Any = r.clients[0] if side == "client" else r.server
            forged = dataclasses.replace(message, **{field.name: wrong})
            before = fingerprint(target)
            label = f"{type(message).__name__}.{field.name} = {wrong!r:.40}"
            try:
                target.handle(forged)
            except ProtocolError:
                if fingerprint(target) != before:
                    failures.append(f"{label}: refused, but the state changed")
            except Exception as exc:  # the finding: an untyped error
                failures.append(f"{label}: {type(exc).__name__}: {exc}")
            else:
                failures.append(f"{label}: accepted")
    assert not failures, f"{len(failures)} mistyped fields not refused:\n" + "\n".join(
        failures[:40]
    )


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_a_setup_whose_round_id_is_not_16_bytes_is_refused_unchanged(size: int) -> None:
    r = SteppedRound(5, 3)
    setup = r.message_for(0)
    assert isinstance(setup, RoundSetup)
    forged = dataclasses.replace(setup, round_id=bytes(size))
    client = r.clients[0]
    before = fingerprint(client)
    with pytest.raises(ProtocolError):
        client.handle(forged)
    assert fingerprint(client) == before
    assert client.handle(setup)  # the genuine setup is still taken
    assert r.server.phase == ServerPhase.ADVERTISE_KEYS
