"""A resend of the key holder's last decryption request gets the very reply it made, and
nothing else does (KeyHolderService._repeat, 2026-12-06).

The server resends a request once a round when the key holder's session changed before
it answered. When the session broke under a decryption's reply, the record refused the
resend as a round already served and the round aborted; the same process now answers the
identical request with the identical reply (no new decryption, nothing counted). What
must hold for that to release nothing new: only the byte-identical request, only right
after its decryption (any other message in between ends it), and only a sum released
(a refusal made after a decryption is not kept).
"""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import SecAggError
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import FederationEnd, Relay, decode_message, encode_message


class _NotReleased(SecAggError):
    """Raised after the decryption was recorded: spent, not released."""


class _Session:
    """Decrypts a request ``b"sum:<n>"`` into a reply naming its decryption's number, so a
    repeated reply and a new decryption tell apart; ``b"bad:<n>"`` decrypts and refuses
    (spent, not released: the CKKS key holder's implausible sum until 2026-12-06, a reply
    it fails to build now); anything else is answered, not decrypted.
    A round decrypted once is refused after (the record)."""

    def __init__(self) -> None:
        self.decryptions = 0
        self.rounds: set[int] = set()
        self.calls = 0

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        self.calls += 1
        kind = bytes(payload).split(b":")[0]
        if kind in (b"sum", b"bad"):
            if round_number in self.rounds:
                raise SecAggError(f"round {round_number} already served")
            self.rounds.add(round_number)
            self.decryptions += 1
            if kind == b"bad":
                raise _NotReleased("not released")
            return b"decryption %d" % self.decryptions
        return b"key"

    def refusal(self, error: BaseException) -> bytes:
        return b"refused: " + str(error).encode()


class _Endpoint:
    def __init__(self, requests: list[bytes]) -> None:
        self.inbox = deque(requests)
        self.sent: list[Relay] = []

    def send(self, payload: bytes) -> None:
        message = decode_message(payload)
        assert isinstance(message, Relay)
        self.sent.append(message)

    def receive(self, timeout: float | None) -> bytes | None:
        return self.inbox.popleft() if self.inbox else None


def _serve(*requests: tuple[int, bytes]) -> tuple[_Session, list[Relay]]:
    session = _Session()
    endpoint = _Endpoint([encode_message(Relay(number, body)) for number, body in requests])
    endpoint.inbox.append(encode_message(FederationEnd(9, True, "")))
    service = KeyHolderService("compliance", endpoint, session)  # type: ignore[arg-type]
    service.run(idle_timeout=60.0)  # the endpoint answers None at once when empty
    assert service.decryptions == session.decryptions
    return session, endpoint.sent


def test_the_resent_request_gets_the_same_reply_and_no_second_decryption() -> None:
    session, sent = _serve((1, b"key:1"), (1, b"sum:1"), (1, b"sum:1"))
    assert sent == [Relay(1, b"key"), Relay(1, b"decryption 1"), Relay(1, b"decryption 1")]
    assert session.decryptions == 1 and session.calls == 2  # the resend never reached it


def test_another_message_in_between_ends_the_repeat() -> None:
    session, sent = _serve((1, b"sum:1"), (2, b"key:2"), (1, b"sum:1"))
    assert sent[-1] == Relay(1, b"refused: round 1 already served")
    assert session.decryptions == 1


def test_a_refusal_after_a_decryption_is_not_repeated_as_a_release() -> None:
    session, sent = _serve((1, b"bad:1"), (1, b"bad:1"))
    assert sent == [
        Relay(1, b"refused: not released"),
        Relay(1, b"refused: round 1 already served"),
    ]
    assert session.calls == 2


@settings(max_examples=200, deadline=None)
@given(
    requests=st.lists(
        st.tuples(st.integers(1, 3), st.sampled_from([b"key:", b"sum:", b"sum:x", b"bad:"])),
        max_size=12,
    )
)
def test_no_request_ever_gets_a_reply_other_than_its_own_decryption(
    requests: list[tuple[int, bytes]],
) -> None:
    """Whatever the sequence: every request gets one reply, and every release sent
    answers a request identical to the one it was decrypted for (so a resend reveals
    nothing new), never another's; the lifetime count is the session's."""
    session, sent = _serve(*requests)
    made: dict[bytes, tuple[int, bytes]] = {}  # reply -> the request it was made for
    for (number, body), reply in zip(requests, sent, strict=True):
        if reply.payload.startswith(b"decryption"):
            first = made.setdefault(reply.payload, (number, body))
            assert first == (number, body), f"{reply.payload!r} answered another request"
    # every release is one of the session's decryptions (a repeat made none of its own)
    assert all(int(reply.split()[1]) <= session.decryptions for reply in made)
