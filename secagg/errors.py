"""Every error the engine raises, in one place.

Callers catch specific types, never strings: a transport turns
:class:`ProtocolError` into a refusal of the offending message, the runtime turns
:class:`RoundAborted` into a cleanly failed round, and an auditor's tooling treats
:class:`CryptoError` as evidence of tampering. A malformed or out-of-phase message
always raises *before* any state changes, so catching the error and carrying on
is safe.
"""

from __future__ import annotations


class SecAggError(Exception):
    """Base class of every error raised by secagg."""


class ConfigurationError(SecAggError, ValueError):
    """A parameter set that cannot give a correct or private round."""


# --- cryptography -----------------------------------------------------------


class CryptoError(SecAggError):
    """A cryptographic check failed (never carries secret material)."""


class DecryptionError(CryptoError):
    """An AEAD ciphertext failed authentication: tampered, misaddressed or replayed."""


class SignatureError(CryptoError):
    """An Ed25519 signature did not verify."""


class SecretSharingError(CryptoError):
    """Shares are too few, duplicated, out of range or inconsistent."""


# --- protocol ---------------------------------------------------------------


class ProtocolError(SecAggError):
    """A message was refused; the state machine that raised it is unchanged."""


class MalformedMessage(ProtocolError):
    """Bytes that do not decode to a well-formed message of a known version."""


class UnexpectedMessage(ProtocolError):
    """A well-formed message that the current phase does not accept."""


class WrongRound(ProtocolError):
    """A message bound to another round: stale, replayed or misrouted."""


class DuplicateMessage(ProtocolError):
    """A second message of the same phase from the same party."""


class UnknownParty(ProtocolError):
    """A message from, to or about a party that is not in this round."""


class InvalidMessage(ProtocolError):
    """A well-formed message whose content breaks a protocol rule."""


class PrivacyViolation(ProtocolError):
    """The server asked for something an honest client must never reveal.

    Raised when an unmasking request would make a client reveal both the
    self-mask share and the mask-key share of the same neighbour, or when the
    request otherwise contradicts what the client already knows.
    """


class RoundAborted(SecAggError):
    """The round cannot finish correctly; no (partial) sum is released.

    ``reason`` says why in words a log reader understands; ``phase`` names the
    phase in which the abort was decided.
    """

    def __init__(self, reason: str, *, phase: str | None = None) -> None:
        self.reason = reason
        self.phase = phase
        super().__init__(f"round aborted{f' in {phase}' if phase else ''}: {reason}")
