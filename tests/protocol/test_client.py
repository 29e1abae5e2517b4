"""What one client computes in a round: its public-key work (review perf.md, "Our client
redoes X25519 exchanges").

A client must agree two keys with each keyed neighbour (Bonawitz et al.: the channel key
that seals the shares, the pair seed of the masks), one X25519 exchange each. The review
found three exchanges where two do (the channel key agreed again to open the shares: cached
since) and, on top, two probe exchanges per neighbour for the low-order check, which the two
agreements now make themselves. Counted here, through the ``kx`` entry points the client
calls, over whole rounds: any graph, with and without dropouts, the active variant too.

And what a client takes as its input: one vector per round, given once.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from _harness import SteppedRound, random_inputs, refused_call, wire

from secagg.crypto import kx
from secagg.errors import ConfigurationError, UnexpectedMessage, WrongRound
from secagg.protocol import Client, RoundConfig, Server, ServerPhase
from secagg.protocol.client import ClientPhase
from secagg.protocol.messages import RoundAbort


def _count_client_key_work(
    monkeypatch: pytest.MonkeyPatch, r: SteppedRound, skip_at_input: frozenset[int]
) -> Counter[str]:
    """Run ``r`` to its end; count every exchange-backed kx call made inside a client."""
    counts: Counter[str] = Counter()
    inside_client = [False]
    for name in ("derive_key", "check_public_key"):
        original = getattr(kx, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            if inside_client[0]:
                counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(kx, name, counted)
    for client in r.clients:
        handle = client.handle

        def tracked(message, _handle=handle):
            inside_client[0] = True
            try:
                return _handle(message)
            finally:
                inside_client[0] = False

        monkeypatch.setattr(client, "handle", tracked)
    phase = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        # phase 0: advertise, 1: share keys, 2: masked input (the skipped vanish here)
        r.step(skip=skip_at_input if phase >= 2 else frozenset())
        phase += 1
    return counts


@pytest.mark.parametrize(
    ("graph", "n", "threshold", "active", "dropped"),
    [
        ("harary", 12, None, False, frozenset()),
        ("harary", 12, None, False, frozenset({3, 7})),
        ("complete", 6, 3, False, frozenset({1})),
        ("complete", 5, None, True, frozenset()),
    ],
)
def test_a_client_agrees_each_key_once_per_neighbour_and_probes_none(
    monkeypatch: pytest.MonkeyPatch,
    graph: str,
    n: int,
    threshold: int | None,
    active: bool,
    dropped: frozenset[int],
) -> None:
    r = SteppedRound(n, 16, graph=graph, threshold=threshold, active=active)
    keyed_pairs = sum(len(r.server.graph.neighbours(p)) for p in range(n))
    counts = _count_client_key_work(monkeypatch, r, dropped)
    assert r.server.phase == ServerPhase.COMPLETE
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
    # two agreements per (client, neighbour), whoever drops later; no separate probes
    assert counts["derive_key"] == 2 * keyed_pairs
    assert counts["check_public_key"] == 0


def _other_input(r: SteppedRound) -> np.ndarray:
    return random_inputs(1, r.config.vector_length, r.config.bits)[0]


def test_a_second_input_before_the_masked_input_is_sent_is_refused() -> None:
    """Before: the second vector silently replaced the first (the caller could not tell
    which one the round summed). Given in the constructor or by ``set_input``, the
    first input stands; a second is refused, nothing changed, and the round sums the
    first."""
    r = SteppedRound(4, 8)
    refused_call(r.clients[0], UnexpectedMessage, r.clients[0].set_input, _other_input(r))
    r.step()  # setup -> keys advertised
    refused_call(r.clients[1], UnexpectedMessage, r.clients[1].set_input, _other_input(r))
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


def test_a_second_set_input_is_refused_whether_or_not_the_vector_is_valid() -> None:
    """The refusal is about the call, not the vector: even a malformed second vector
    is refused as a second input (and one of the wrong length, before the setup)."""
    r = SteppedRound(3, 8)
    client = r.clients[2]
    refused_call(client, UnexpectedMessage, client.set_input, np.zeros(5, dtype=np.uint32))


def test_an_input_given_while_the_round_waits_for_it_is_sent_and_the_next_is_refused() -> None:
    r = SteppedRound(4, 8)
    late = r.clients[3] = Client(3)  # no input yet
    r.step()  # keys advertised
    r.step()  # shares sent
    replies = r.clients_reply()  # the share delivery: client 3 has nothing to mask yet
    assert late.phase == ClientPhase.AWAIT_INPUT
    replies += late.set_input(r.inputs[3])
    assert late.phase == ClientPhase.AWAIT_UNMASKING
    refused_call(late, UnexpectedMessage, late.set_input, r.inputs[3])
    r.server_receives(replies)
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    assert 3 in r.server.report.included
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


# --- a client bound to its round (hostile-input audit 2026-12-05) ------------------------


def test_a_client_started_for_a_round_refuses_the_setup_of_another() -> None:
    """Before, a client waiting for its setup took the setup of any round id (a stale
    or replayed one from another round of the same server, or another session's) and
    advertised keys bound to that round. Given the round id it was started for, it now
    refuses any other round's setup with WrongRound, state unchanged, and then takes
    its own round's setup."""
    r = SteppedRound(4, 4)
    ours = r.message_for(0)
    other = SteppedRound(4, 4).message_for(0)  # the same shape, another round id
    assert other.round_id != ours.round_id
    client = Client(0, r.inputs[0], round_id=r.server.round_id)
    caught = refused_call(client, WrongRound, client.handle, wire(other))
    assert "another round" in str(caught.value)
    assert client.phase == ClientPhase.AWAIT_SETUP
    (advert,) = client.handle(wire(ours))
    assert advert.round_id == ours.round_id
    assert client.phase == ClientPhase.AWAIT_KEYS


@pytest.mark.parametrize("bad", ["x" * 16, b"short", bytearray(16), 16, True])
def test_a_round_id_that_is_not_16_bytes_is_a_configuration_error(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="round id is 16 bytes"):
        Client(0, round_id=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("keys", [[b"k" * 32, b"l" * 32], "keys", 5])
def test_identity_keys_that_are_not_a_mapping_are_a_configuration_error(keys) -> None:
    """A list of keys failed as TypeError ("cannot convert dictionary update sequence")."""
    with pytest.raises(ConfigurationError, match="identity_keys must map party ids"):
        Client(0, identity_keys=keys)


def test_an_input_after_an_abort_says_the_round_was_aborted_not_that_it_was_sent() -> None:
    """A client whose round aborted before its masked input left refused a later input
    with "the masked input has already been sent": false, and a caller would believe
    its update had gone out. It now says the round was aborted, state unchanged."""
    r = SteppedRound(4, 4)
    client = Client(0)  # no input yet
    client.handle(wire(r.message_for(0)))
    abort = RoundAbort(r.server.round_id, 0, "operator shutdown")
    client.handle(wire(abort))
    assert client.phase == ClientPhase.ABORTED
    caught = refused_call(client, UnexpectedMessage, client.set_input, r.inputs[0])
    assert "aborted" in str(caught.value) and "already been sent" not in str(caught.value)


def test_keys_of_the_wrong_kind_are_refused_at_construction_not_mid_round() -> None:
    """A str signing key or identity key was taken and failed later as an
    AttributeError inside a message handler (the round stuck for that party)."""
    from secagg.crypto.signing import SigningKey

    key = SigningKey.generate()
    with pytest.raises(ConfigurationError, match="signing_key must be a signing key"):
        Client(0, signing_key="secret", identity_keys={1: key.verify_key})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="identity key of party 1 must be a verify key"):
        Client(0, signing_key=key, identity_keys={1: "public"})  # type: ignore[dict-item]
    config = RoundConfig.create(4, 2, active=True)
    with pytest.raises(ConfigurationError, match="identity key of party 0 must be a verify key"):
        Server(
            config,
            identity_keys={0: b"k" * 32, 1: key.verify_key, 2: key.verify_key, 3: key.verify_key},
        )  # type: ignore[dict-item]


def test_the_shares_a_client_holds_never_show_in_a_repr() -> None:
    """The shares neighbours entrusted to a client are secret (t of them rebuild a secret):
    a repr, as a debug line or a traceback's locals print it, must show neither share,
    as ``Share`` and ``KeyPair`` hide theirs."""
    r = SteppedRound(4, 3)
    while r.server.phase != ServerPhase.UNMASKING:
        r.step()
    held = r.clients[0]._held
    assert len(held) == 4  # its own and one from each neighbour
    for shares in held.values():
        text = repr(shares) + str(shares) + repr(held)
        for secret in (shares.self_mask, shares.mask_key):
            assert secret.hex() not in text
            assert repr(secret) not in text


@pytest.mark.parametrize(
    "reason",
    [
        "stopping\n2026-12-06 INFO round 7 complete: sum released",  # a forged log line
        "\x1b[2J\x1b[31mbranch compromised\x1b[0m",  # ANSI: clears and paints the terminal
        "quota \u202eexceeded",  # a bidirectional override reorders what is read
        "tab\tand\r\ncarriage return",
    ],
    ids=["newline", "ansi", "bidi", "controls"],
)
def test_a_servers_abort_reason_is_kept_as_one_log_safe_line(reason: str) -> None:
    """The server's text of a RoundAbort went verbatim into ``abort_reason``, which a
    caller logs: a newline forged a log line, an escape painted the terminal. It is now
    one printable line (errors.printable_line), the words kept."""
    r = SteppedRound(4, 4)
    client = r.clients[0]
    client.handle(wire(r.message_for(0)))
    client.handle(wire(RoundAbort(r.server.round_id, 0, reason)))
    assert client.phase == ClientPhase.ABORTED
    kept = client.abort_reason or ""
    assert kept.startswith("server aborted the round: ")
    assert kept.isprintable(), repr(kept)
    assert "\u202e" not in kept
    for word in reason.replace("\x1b", " ").split():
        if word.isprintable() and word.isalpha():
            assert word in kept
