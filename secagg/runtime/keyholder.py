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
from secagg.runtime.wire import Relay, decode_message, encode_message
from secagg.transport.base import ClientEndpoint

log = logging.getLogger("secagg.keyholder")


class KeyHolderService:
    """Serves a helper session's requests from the federation server."""

    def __init__(self, name: str, transport: ClientEndpoint, session: HelperSession) -> None:
        self.name = name
        self._transport = transport
        self.session = session
        self.answered = 0

    @property
    def decryptions(self) -> int:
        return int(getattr(self.session, "decryptions", self.answered))

    def run(self, *, idle_timeout: float = 120.0) -> int:
        """Answer requests until the server is silent for ``idle_timeout``; returns decryptions."""
        while True:
            payload = self._transport.receive(timeout=idle_timeout)
            if payload is None:
                return self.decryptions
            try:
                message = decode_message(payload)
                if not isinstance(message, Relay):
                    continue  # round starts and ends are not for the helper
                reply = self.session.handle(message.payload)
            except SecAggError as exc:
                log.warning("%s refused a request: %s", self.name, exc)
                continue
            self.answered += 1
            self._transport.send(encode_message(Relay(message.round, reply)))
