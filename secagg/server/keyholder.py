"""The CKKS key holder: the only party that can decrypt, and only sums.

In a CKKS federation the server adds ciphertexts it cannot read; someone must
hold the secret key. That is this role: a process run by a party the server
operator does not control (a compliance office, an HSM-backed service). It
connects to the server like a branch (its own certificate, outbound only) and
answers two requests:

* ``KEY_REQUEST``: generate (once) a key pair for the federation's design point
  (clients per round, value bound, precision) and publish the public context,
  which the server relays to the branches;
* ``DECRYPT``: decrypt an aggregate of at least two contributions, add the
  round's central DP noise (std ``z * C``, from its own CSPRNG) and return only
  the noised sum. The server therefore never sees an un-noised sum, and no
  exact CKKS decryption ever leaves this process (which matters: exact CKKS
  decryptions can leak the secret key, Li and Micciancio 2021).

It never receives an individual upload: those go to the server, which only
adds them. Trust assumptions, stated: an honest-but-curious server relays the
public context faithfully; a malicious one could substitute its own key unless
branches pin this key holder's fingerprint (logged here when the key is made).
"""

from __future__ import annotations

import logging

import numpy as np

from secagg.aggregation.ckks import unframe_chunks
from secagg.dp.noise import gaussian
from secagg.errors import MalformedMessage, SecAggError
from secagg.federation.wire import Envelope, Kind
from secagg.he.keys import KeyHolder
from secagg.he.params import CKKSParameters, choose_parameters
from secagg.he.vectors import chunk_count
from secagg.transport.inprocess import ClientEndpoint

log = logging.getLogger("secagg.keyholder")


def design_point(header: dict[str, object]) -> CKKSParameters:
    """The CKKS parameters every party derives from the same public design point."""
    try:
        return choose_parameters(
            int(header["num_clients"]),  # type: ignore[call-overload]
            float(header["value_bound"]),  # type: ignore[arg-type]
            float(header["precision"]),  # type: ignore[arg-type]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"bad CKKS design point: {exc}") from None


class KeyHolderService:
    """Serves key and decryption requests from the federation server."""

    def __init__(self, name: str, transport: ClientEndpoint) -> None:
        self.name = name
        self._transport = transport
        self._holder: KeyHolder | None = None
        self.decryptions = 0

    def run(self, *, idle_timeout: float = 120.0) -> int:
        """Answer requests until the server is silent for ``idle_timeout``; returns decryptions."""
        while True:
            payload = self._transport.receive(timeout=idle_timeout)
            if payload is None:
                return self.decryptions
            try:
                reply = self.handle(Envelope.decode(payload))
            except SecAggError as exc:
                log.warning("%s refused a request: %s", self.name, exc)
                continue
            self._transport.send(reply.encode())

    def handle(self, request: Envelope) -> Envelope:
        if request.kind == Kind.KEY_REQUEST:
            params = design_point(request.header)
            if self._holder is None or self._holder.params != params:
                self._holder = KeyHolder(params)
                log.info(
                    "%s: new CKKS key, fingerprint %s", self.name, self._holder.fingerprint.hex()
                )
            return Envelope(
                Kind.KEY_PUBLIC,
                request.round,
                {"fingerprint": self._holder.fingerprint.hex()},
                self._holder.public_context_bytes,
            )
        if request.kind == Kind.DECRYPT:
            if self._holder is None:
                raise MalformedMessage("no key has been made yet")
            dimension = int(request.header.get("dimension", 0))
            std = float(request.header.get("noise_std", 0.0))
            if dimension < 1 or not std >= 0:
                raise MalformedMessage("bad decryption request")
            chunks = unframe_chunks(request.body, chunk_count(dimension, self._holder.params.slots))
            total = self._holder.decrypt_aggregate(chunks, dimension=dimension)
            noised = total + gaussian(std, dimension)  # released only with its noise
            self.decryptions += 1
            return Envelope(Kind.DECRYPTED, request.round, {}, np.asarray(noised, "<f8").tobytes())
        raise MalformedMessage(f"a key holder does not answer {request.kind.name}")
