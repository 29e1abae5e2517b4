"""Every error the engine raises, in one place.

Callers catch specific types, never strings: a transport turns
:class:`ProtocolError` into a refusal of the offending message, the runtime turns
:class:`RoundAborted` into a cleanly failed round, and an auditor's tooling treats
:class:`CryptoError` as evidence of tampering. A malformed or out-of-phase message
always raises *before* any state changes, so catching the error and carrying on
is safe.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


class SecAggError(Exception):
    """Base class of every error raised by secagg."""


class ConfigurationError(SecAggError, ValueError):
    """A parameter set that cannot give a correct or private round."""


class WordTypeError(ConfigurationError, TypeError):
    """An array that is not a vector of the engine's words (uint32 or uint64).

    Also a :class:`TypeError`, which is what a wrong dtype raised before, so a caller
    that caught that keeps working; a caller of the engine catches
    :class:`ConfigurationError` (or :class:`SecAggError`) like every other mistake."""


class NotARegularFile(ConfigurationError):
    """A path named as a file (a key, a certificate, a state file, a config) is a named
    pipe, a device or a socket: refused before a byte is read from it.

    Why a type of its own: a named pipe blocked the reader's ``open()`` forever (it
    waits for a writer) and ``/dev/zero`` was read until memory ran out; each layer that
    reads a user-named file refuses it through
    :func:`secagg.durable.read_regular_file` and may re-raise it in its own words.
    ``path`` is the path as given, ``kind`` what it is (``a named pipe``)."""

    def __init__(self, path: object, kind: str, what: str) -> None:
        self.path = path
        self.kind = kind
        super().__init__(f"{path} is {kind}, not {what}")


class FileTooLarge(ConfigurationError):
    """A file holds more than its reader's bound: no key, certificate or state file is
    that large, so it is the wrong file, and reading it whole would only fill memory."""


# --- cryptography -----------------------------------------------------------


class CryptoError(SecAggError):
    """A cryptographic check failed (never carries secret material)."""


class DecryptionError(CryptoError):
    """An AEAD ciphertext failed authentication: tampered, misaddressed or replayed."""


class SignatureError(CryptoError):
    """An Ed25519 signature did not verify."""


class SecretSharingError(CryptoError):
    """Shares are too few, duplicated, out of range or inconsistent."""


class StreamCopyRefused(ConfigurationError, TypeError):
    """A :class:`~secagg.crypto.stream.KeyedStream` was to be copied or pickled.

    A copy is a twin: the same key at the same position, handing out the same words, so
    noise or a mask drawn from both would be the same twice. A caller's mistake, so a
    :class:`ConfigurationError`; also a :class:`TypeError`, what ``pickle`` raises for an
    object it cannot pickle (Ray's serializer reports that type with the argument's path)."""


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


class ContradictoryPolicy(ConfigurationError):
    """A party's own policy whose settings contradict each other: refused when the
    policy is built, naming every setting involved (``settings``, the keys of its table
    without their ``branch.`` prefix) and why they cannot hold together (``reason``).

    Why a type of its own: the contradiction is two keys, not one value, and a caller
    that read them from two places (a command's flags and its policy file) names each
    where it came from; the message alone names them as the table's keys."""

    def __init__(self, settings: Sequence[str], reason: str, *, prefix: str = "branch.") -> None:
        self.settings = tuple(settings)
        self.reason = reason
        named = " with ".join(f"{prefix}{name}" for name in self.settings)
        super().__init__(f"{named}: {reason}")


class PolicyRefused(ConfigurationError):
    """A party refused a round weaker than its own policy allows.

    Each party (a branch, the key holder) holds its own minimums: allowed
    backends, the pinned key holder, the largest clip, the smallest noise and
    threshold. ``setting`` names the policy setting the round violated, so the
    one-line log says which promise the server tried to break.
    """

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(f"refused by policy {setting}: {message}")


# --- encoding and differential privacy ---------------------------------------


class BudgetUnreachable(ConfigurationError):
    """No noise a calibration tries meets the privacy budget ``epsilon``: even
    ``noise_multiplier`` (the most it tries) spends ``spent``, the figure of the
    mechanism that was being calibrated (a caller calibrating another mechanism from
    this one's answer re-raises with its own figure)."""

    def __init__(self, message: str, *, epsilon: float, noise_multiplier: float, spent: float):
        self.epsilon = epsilon
        self.noise_multiplier = noise_multiplier
        self.spent = spent
        super().__init__(message)


class HeadroomError(ConfigurationError):
    """The sum of the clients' encoded vectors could overflow the ring.

    Carries the two ways out: ``largest_clients`` (the most clients that fit
    with ``bits`` bits) and ``suggested_bits``, the narrowest of the
    ``supported_bits`` (the masking engine offers b = 32 and b = 64) that fits
    ``num_clients``, or None when none does. ``smallest_bits`` is the fewest bits
    that would fit them, a count and not a width to ask for: the message names
    only supported widths (it suggested 33 or 65 bits, or 1998 for a bound of 1e300
    at scale 1e300, which no ring offers).
    """

    def __init__(
        self,
        *,
        num_clients: int,
        bits: int,
        largest_clients: int,
        smallest_bits: int,
        detail: str,
        supported_bits: tuple[int, ...] = (32, 64),
    ) -> None:
        self.num_clients = num_clients
        self.bits = bits
        self.largest_clients = largest_clients
        self.smallest_bits = smallest_bits
        self.supported_bits = tuple(supported_bits)
        wide_enough = [width for width in self.supported_bits if width >= smallest_bits]
        self.suggested_bits: int | None = min(wide_enough) if wide_enough else None
        if largest_clients < 1:  # was "at most 0 clients fit"
            fewer = f"not one client fits in {bits} bits"
        elif largest_clients == 1:
            fewer = f"at most 1 client fits in {bits} bits"
        else:
            fewer = f"at most {largest_clients} clients fit in {bits} bits"
        if self.suggested_bits is not None:
            wider = f"{num_clients} clients fit in {self.suggested_bits} bits"
        else:
            widths = " or ".join(str(width) for width in self.supported_bits)
            wider = f"no supported width ({widths} bits) holds {num_clients} clients"
        super().__init__(
            f"{detail}: {fewer}, or {wider}; lower the scale or the clip, or request "
            "modular clipping explicitly"
        )


def closest_spelling(name: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` closest to a misspelt ``name``, if one is close (difflib's
    ratio of at least 0.7: ``epsilon_budgt`` finds ``epsilon_budget``, ``rounds`` finds
    nothing among ``[dp]``'s keys). Here, at the bottom of the layers, so that every
    config reader (simulate, the federation file, a branch's policy, a party's table)
    gives the same hint by the same rule."""
    import difflib

    close = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.7)
    return close[0] if close else None


#: the most unknown names a config reader's refusal lists (and looks up a spelling for)
LISTED_UNKNOWN_NAMES = 8


def listed_names(names: Sequence[str]) -> str:
    """``['a', 'b']``, or the first :data:`LISTED_UNKNOWN_NAMES` and ``and N more``.

    Why a bound, and why here: a config file of a million unknown names took minutes (a
    spelling looked up for each) and printed one line of 10.9 MB (hostile CLI review,
    2026-12-06); so many names are not a typo, and a few say what the file is. The
    federation file and a party's policy file list them by this one rule."""
    more = len(names) - LISTED_UNKNOWN_NAMES
    return f"{list(names[:LISTED_UNKNOWN_NAMES])}" + (f" and {more} more" if more > 0 else "")


def printable_line(text: str) -> str:
    """``text`` as one log-safe line: every control, format (bidirectional override),
    surrogate, private-use or unassigned character (Unicode category C) becomes a space,
    and runs of whitespace one space. Callers cut it to their own bound.

    Why here: another party's words (a key holder's refusal, a server's status text)
    reach log lines, abort reasons and one-line CLI errors, where a newline forges a
    line, an ANSI escape paints the terminal and a U+202E reorders what is read."""
    import unicodedata

    clean = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return " ".join(clean.split())


def decimal_digits(value: int) -> int:
    """How many decimal digits ``value`` has (its sign aside), exactly, for a message
    that names an integer too long to print (``an integer of 401 digits``).

    Why not ``len(str(value))``: ``str`` refuses an integer of more than
    ``sys.get_int_max_str_digits()`` (4 300) digits with a ValueError, and the messages
    that need a count are those about integers past the floats, which a TOML file holds
    up to that limit and code of any size. Why not the bit length's estimate
    ``floor(bits * log10(2)) + 1`` alone (written three times before this, in the
    federation config, the branch policy and the key holder's table): it is one too many
    for every integer below the power of ten its bit length reaches (8 has 4 bits and 1
    digit, the estimate says 2), and a float product that far out could round either
    way. One comparison with a power of ten on each side makes it exact. Here, at the
    bottom of the layers, so that every reader counts the same way."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"decimal_digits counts the digits of an int, not {type(value).__name__}")
    magnitude = abs(value)
    digits = max(1, math.floor(magnitude.bit_length() * math.log10(2)) + 1)
    while digits > 1 and magnitude < 10 ** (digits - 1):
        digits -= 1
    while magnitude >= 10**digits:
        digits += 1
    return digits
