"""A backend's helper as a process: the CKKS key holder, for instance.

Some backends need a party besides the server and the clients (CKKS: the only
holder of the secret key, run by someone the server operator does not
control: a compliance office, an HSM-backed service). It connects to the server
like a branch (its own certificate, outbound only) and answers the requests of
the backend's :class:`~secagg.aggregation.base.HelperSession`, relayed as
:class:`~secagg.runtime.wire.Relay` messages. This loop never names a backend:
what is answered, and how, is the session's.
"""

from __future__ import annotations

import logging

from secagg.aggregation import HelperSession
from secagg.errors import SecAggError
from secagg.runtime.wire import FederationEnd, Relay, decode_message, encode_message
from secagg.transport.base import ClientEndpoint

log = logging.getLogger("secagg.keyholder")


class KeyHolderService:
    """Serves a helper session's requests from the federation server.

    The loop outlives any one message: whatever a message makes the decoder or
    the session raise (a refusal by the key holder's policy, a malformed or
    hostile payload, a bug), it is logged and the next message is read. A server
    must not be able to stop the key holder by what it sends (review L3); only
    the transport ending, the server going silent, or the server's
    :class:`~secagg.runtime.wire.FederationEnd` ends the loop. Ending on that
    announcement lets the key holder exit with the branches instead of waiting out
    its idle timer after every finished federation; a forged end costs only a
    restart of the key holder, never a decryption.
    """

    def __init__(self, name: str, transport: ClientEndpoint, session: HelperSession) -> None:
        self.name = name
        self._transport = transport
        self.session = session
        self.answered = 0
        self.refused = 0
        self.end: FederationEnd | None = None

    @property
    def decryptions(self) -> int:
        return int(getattr(self.session, "decryptions", self.answered))

    def run(self, *, idle_timeout: float = 120.0) -> int:
        """Answer requests until the server announces the federation's end or is silent for
        ``idle_timeout``; returns decryptions. :attr:`end` holds the announcement, if any."""
        while True:
            payload = self._transport.receive(timeout=idle_timeout)
            if payload is None:
                return self.decryptions
            reply = self._answer(payload)
            if reply is not None:
                self._transport.send(reply)
            if self.end is not None:
                return self.decryptions

    def _answer(self, payload: bytes) -> bytes | None:
        """The reply to one message, or None (not for the helper, or refused and logged)."""
        before = self.decryptions
        try:
            message = decode_message(payload)
            if isinstance(message, FederationEnd):
                self._ended(message)
                return None
            if not isinstance(message, Relay):
                return None  # round starts and ends are not for the helper
            answer = self.session.handle(message.payload, round_number=message.round)
            reply = encode_message(Relay(message.round, answer))
        except SecAggError as exc:
            self.refused += 1
            self._log_spent(before)
            log.warning("%s refused a request: %s", self.name, exc)
            return None
        except Exception as exc:  # anything else a hostile message provokes: never crash
            self.refused += 1
            self._log_spent(before)
            log.error(
                "%s: a request raised %s (%s); ignored, serving on",
                self.name,
                type(exc).__name__,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return None
        self.answered += 1
        if self.decryptions != before:
            log.info(
                "%s decrypted round %d (decryption %d of its lifetime)",
                self.name,
                message.round,
                self.decryptions,
            )
        return reply

    def _ended(self, end: FederationEnd) -> None:
        self.end = end
        log.info(
            "%s: the federation %s after round %d%s",
            self.name,
            "finished" if end.finished else "stopped",
            end.round,
            f" ({end.reason})" if end.reason else "",
        )

    def _log_spent(self, before: int) -> None:
        if self.decryptions != before:  # decrypted, then refused to release (implausible sum)
            log.warning(
                "%s: one decryption spent without release (lifetime count %d)",
                self.name,
                self.decryptions,
            )
