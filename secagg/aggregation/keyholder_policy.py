"""The CKKS key holder's own rules: its noise, its floor of contributions, its budget.

Theory of operation
-------------------
The key holder is the only party that can decrypt, and the server is the party
its decryptions are for, so the key holder must not take its rules from the
server (security review H3). A :class:`KeyHolderPolicy` is configured where the
key holder runs (the ``[key_holder]`` section of its own config, or the
constructor) and the :class:`~secagg.aggregation.ckks.KeyHolderSession` applies
it to every request, whatever the request says:

* **Noise.** Every decryption leaves with Gaussian noise of standard deviation
  ``max(policy.noise_stddev, server's request, noise_floor(params))``. The
  server may ask for *more* noise (its DP mechanism plans the central noise, and
  the key holder adding it means nobody sees an un-noised sum), never for less, and
  never for more than :meth:`KeyHolderPolicy.noise_cap` (``max_noise_stddev``, else
  :data:`NOISE_CAP_PER_RANGE` times the design point's largest honest sum:
  :class:`NoiseRequestTooLarge`, before any decryption).
  The floor (:func:`noise_floor`) is the design point's documented CKKS error
  bound times :data:`NOISE_FLOOR_MULTIPLE`, so no exact decryption ever leaves,
  even with ``noise_stddev = 0`` (tests and simulations without DP): see
  docs/backends.md for what the floor does and does not buy.
* **One decryption per round number**, and round numbers must increase: a
  replayed or older round number is refused (:class:`RoundAlreadyServed`), so the
  averaging attack of H3(c) cannot repeat one round's request. A malicious server
  can still invent new round numbers, which is why there is a lifetime cap
  (``max_decryptions``, :class:`DecryptionCapReached`; required of a key holder
  that adds its own noise, since each decryption is one more DP release) and why
  every decryption is logged with its running count.
* **A pace for new rounds.** Each new round is written to disk before its key leaves,
  so a server raising the round number on every key request made the key holder write
  at the server's pace. :class:`OpeningAllowance` lets it open
  :data:`OPENINGS_WITHOUT_DECRYPTION` rounds beyond its last decryption, then one per
  :data:`OPENING_INTERVAL` seconds (:class:`OpeningsOutpaceDecryptions` beyond that).
* **The agreed length only.** With ``dimension`` (the federation's round length;
  the runtime binds it from the federation's config the key holder holds), a request
  for a sum of any other length is refused (:class:`WrongDimension`) before the
  record or the key is touched. The request's dimension is the server's word: a
  longer sum releases more coordinates (more of the key's error, more of one update)
  per decryption than the federation agreed to, so it is not the server's choice.
  Without ``dimension``, ``max_dimension`` caps the length (the config-less key holder's
  default :data:`CONFIGLESS_MAX_DIMENSION`), refused the same way.
* **One federation.** With ``federation`` (the runtime binds it from the federation's
  config, ``[federation] name``), a key request or a decryption request naming another
  federation is refused (:class:`WrongFederation`) before anything is checked, opened or
  recorded, and the record (:class:`DecryptionRecord`) is that federation's alone: a
  server cannot splice federation A's aggregate into B's round, and one key serving two
  federations keeps a record, and a count, per federation.
* **At least** ``min_contributions`` summands, as the aggregate claims. The key
  holder cannot verify the claim (the server adds the ciphertexts), so this
  catches honest mistakes only; docs/backends.md says what would make it sound.
* **Plausible sums only.** An honest aggregate of ``n`` values bounded by ``B``
  decrypts to at most ``n * B`` per coordinate (``n`` the contributions the aggregate
  claims), plus the parameters' CKKS error bound (:func:`plausible_range`). A crafted
  ciphertext that decrypts to a huge value (a scaled secret key) would defeat any fixed
  noise, and a malicious branch's upload can be worth more than the round's count of
  values can sum, so the *exact* sum is clamped into that range, before the noise, and
  released noised as planned (:func:`clamp_to_plausible` says why the planned charge
  covers it). The key holder logs how many coordinates it clamped, never telling the
  server. Until 2026-12-06 such a sum was refused instead (``ImplausibleSum``): one
  un-noised, uncharged bit of the exact sum, which a malicious branch's out-of-range
  upload turned into a threshold on the honest branches' values
  (tests/aggregation/test_ckks_implausible_refusal_bit.py).

With ``state_path``, the federation, the served round numbers and the decryption count
survive restarts (:class:`DecryptionRecord`): the file is written atomically, mode 0600
(:func:`~secagg.durable.write_json_atomically`),
*before* the noised sum is released, and a file that cannot be read stops the
key holder instead of resetting its count; so does a file removed (missing beside its
``<state>.opened`` or ``<state>.lock``: :meth:`DecryptionRecord._refuse_if_removed`).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any

import numpy as np

from secagg.aggregation.policy import FEDERATION_NAME_PATTERN, MAX_CLIP
from secagg.aggregation.spec import MAX_SPEC_CLIENTS
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.durable import (
    LockTimeout,
    create_json_atomically,
    exclusive_lock,
    read_regular_file,
    write_json_atomically,
)
from secagg.errors import (
    ConfigurationError,
    FileTooLarge,
    NotARegularFile,
    ProtocolError,
    SecAggError,
    WrongRound,
    closest_spelling,
    decimal_digits,
)

if TYPE_CHECKING:
    from secagg.he.params import CKKSParameters

log = logging.getLogger("secagg.keyholder")

#: the floor noise std, in units of the design point's documented CKKS error bound
NOISE_FLOOR_MULTIPLE = 1.0
#: noise deviations a noised coordinate may lie beyond an honest sum (a Box-Muller deviate
#: is at most 8.6): what :func:`plausible_range` adds for a noise std, which the key
#: holder uses to refuse a std whose noised sum would overflow a float64 and the CKKS
#: server to refuse a reply no honest sum is; and the tail at which the server's report
#: counts the key holder's noise in its error bound, so that the bound covers every reply
#: the server accepts (it counted 7 while 9 were accepted: review of 2026-12-06)
RANGE_TAIL_Z = 9.0
#: the smallest ``min_contributions`` a key holder accepts: one summand is one client's update
MIN_CONTRIBUTIONS_FLOOR = 2
#: what the [key_holder] config section may hold
POLICY_KEYS = (
    "noise_stddev",
    "min_contributions",
    "max_decryptions",
    "dimension",
    "state",
    "federation",
    "max_clients",
    "max_value_bound",
    "min_precision",
    "max_noise_stddev",
    "max_dimension",
)
#: the design point a key holder with neither the federation's config nor a key file
#: (``secagg keyholder --backend ckks``) makes a key for at most, unless its
#: ``[key_holder]`` table sets ``max_clients`` / ``max_value_bound``: a federation's
#: default value bound (``[backend] value_bound = 1.0``, the clip) and the most branches a
#: simulated federation has, so c·B is at most 10³, not the 10¹¹ a server could name
CONFIGLESS_MAX_CLIENTS = 1000
CONFIGLESS_MAX_VALUE_BOUND = 1.0
#: the finest precision (the sum's absolute error) a config-less key holder makes a key
#: for unless its ``[key_holder]`` table sets ``min_precision``: the default federation's
#: (``10⁻⁶ · value_bound`` at the default bound 1). Why: its noise floor follows the
#: precision, so at the finest a ring admits (about 1.1·10⁻¹³) a crafted query learned
#: about 44 bits a coordinate at the floor, against about 21 at 10⁻⁶ (docs/backends.md)
CONFIGLESS_MIN_PRECISION = 1e-6
#: the longest sum a config-less key holder opens a round for unless its ``[key_holder]``
#: table sets ``max_dimension`` (or a longer ``dimension``): 256 ciphertexts of the
#: config-less design point's ring (1 000 clients, B = 1, 10⁻⁶: N = 4096, 4 096 values a
#: ciphertext), a decryption request of about 14 MB. Why: without it only the transport's
#: message size (256 MiB by default: about 10⁷ values) bounded how many coordinates the
#: server had decrypted at once, and so how much of one update, and of the key's error,
#: one decryption released (review of 2026-12-06)
CONFIGLESS_MAX_DIMENSION = 1 << 20
#: the largest noise std a key holder adds at a server's request, unless its
#: ``[key_holder]`` table sets ``max_noise_stddev``, in units of its design point's
#: largest honest sum per coordinate (clients x value bound): at 10, the largest sum the
#: round could have is a tenth of the noise. Why: the server's request was honoured up to
#: what overflows a float64, so a hostile server spent the key holder's
#: ``max_decryptions`` on sums buried in noise. A federation's central noise z x clip is at
#: most z x B (the clip is at most the value bound), so this admits any z up to 10 x its
#: clients; the key holder's own ``noise_stddev`` is always admitted
NOISE_CAP_PER_RANGE = 10.0

#: 2: the record names the federation it serves (version 1, which named none, is read
#: and rewritten as version 2 when a key holder of a federation starts over it)
_STATE_VERSION = 2
_STATE_VERSIONS_READ = (1, 2)
#: the longest vector a packed envelope carries (its 32-bit length field)
_MAX_DIMENSION = 2**32 - 1
#: The largest ``[key_holder] noise_stddev``: the most central noise any federation can
#: plan, its largest noise multiplier (10^4) times its largest clip (10^6). Why: 1e300
#: loaded and every sum left as noise 1e300 wide (a model that learns nothing, the
#: key holder's record spent on it), and 1e308 refused every decryption as "requested
#: noise std 0.0 overflows a float64 sum", blaming the server's request for the key
#: holder's own setting (config review, 2026-12-06).
MAX_NOISE_STDDEV = MAX_NOISE_MULTIPLIER * MAX_CLIP


# --- refusals ------------------------------------------------------------------


class KeyHolderRefusal(ProtocolError):
    """The key holder's own policy refused a request; nothing was released.

    ``str(refusal)`` is what the server hears (the refusal reply's text, which it writes
    into its log, its round's abort reason and its ledger, and from there branches may
    read it), so it says what failed without any of the key holder's local paths;
    ``local_detail`` is what only the key holder's own log adds to it (which file, the
    records that disagree, what its operator must do;
    :class:`~secagg.runtime.keyholder.KeyHolderService` logs both).

    Why: a refusal over the state file quoted the file's full path, and the server
    logged and stored it; where the key holder keeps its key and record is the key
    holder operator's business, not the server's (review, 2026-12-05)."""

    def __init__(self, message: str, *, local_detail: str = "") -> None:
        super().__init__(message)
        self.local_detail = local_detail


class RoundAlreadyServed(KeyHolderRefusal, WrongRound):
    """A decryption for a round number already served, or lower than the last one served."""


class RoundSuperseded(KeyHolderRefusal, WrongRound):
    """A key request for a round number below the one the key holder last opened; refused
    before any work or write (nothing opened, nothing spent).

    Why: rounds are opened in increasing order (a server numbers each round it begins
    once, restarts included), and every round opened is written to disk before its key
    leaves (two fsyncs). A server alternating two round numbers made each request a new
    opening, and so two fsyncs, without bound; with the opened round only ever rising,
    a repeated request writes nothing and an older one is refused."""


class OpeningsOutpaceDecryptions(KeyHolderRefusal):
    """A key request for a new round refused because the key holder has opened
    :data:`OPENINGS_WITHOUT_DECRYPTION` rounds since its last decryption and the next
    opening is not due yet (:class:`OpeningAllowance`); refused before any write (nothing
    opened, nothing spent). The round already opened stays open and decryptable.

    Why: every new round is written to disk (two fsyncs) before its key leaves, so a
    server raising the round number on every key request made the key holder fsync at the
    server's pace, for no decryption (2.00 fsyncs a request, without bound)."""


class DecryptionCapReached(KeyHolderRefusal):
    """The key holder has served its lifetime number of decryptions."""


class WrongDimension(KeyHolderRefusal):
    """A round opened (key request) or a decryption requested for a sum of another length
    than the key holder's own ``dimension``, or a decryption of another length than its
    round was opened with; refused before any work, so nothing is spent."""


class WrongFederation(KeyHolderRefusal):
    """A key request or a decryption request naming another federation than the one this
    key holder serves (or none, to a key holder of a federation, or one, to a key holder
    of none); refused before any work, so nothing is spent, opened or recorded.

    Why: a request carried the round number only, so a server could splice federation A's
    aggregate into federation B's decryption request, and a key whose holder serves two
    federations counted both in one sequence of round numbers (review, 2026-12-05)."""


class NoiseRequestTooLarge(KeyHolderRefusal):
    """A decryption asking for more noise than the key holder adds at a server's request
    (:meth:`KeyHolderPolicy.noise_cap`); refused before any decryption, so nothing is spent.

    Why: the key holder honoured any requested std a float64 sum could hold, so a hostile
    server had its lifetime cap of decryptions spent on sums buried in noise (review of
    2026-12-06)."""


# --- the policy ------------------------------------------------------------------


def noise_floor(params: CKKSParameters) -> float:
    """The least noise std any decryption under ``params`` leaves with.

    :data:`NOISE_FLOOR_MULTIPLE` times the documented per-coordinate CKKS error
    bound of the design point (a 7-sigma bound of the worst slot, about 30 times
    the measured average error std), so the released value never equals the
    exact decryption and each coordinate carries about 1e-3 bits on the CKKS
    error (docs/backends.md gives the figures and the limits).
    """
    return NOISE_FLOOR_MULTIPLE * params.error_bound(params.num_clients)


def plausible_range(
    params: CKKSParameters, noise_stddev: float, contributions: int | None = None
) -> float:
    """The largest |coordinate| an honest aggregate of ``contributions`` values (default:
    as many as ``params`` were chosen for) under ``params`` decrypts to, with noise of
    std ``noise_stddev`` (0: the exact decryption, which is what the key holder clamps
    into this range: :func:`clamp_to_plausible`).

    Why the aggregate's own count: a persistent key is made for the federation's largest
    round, so a round of 4 under parameters for 20 allowed sums up to 20 value bounds,
    and a malicious branch could send one upload decrypting to 10 bounds (it holds the
    public key; nobody sees inside a ciphertext) and have it released in a sum no 4
    honest values can reach. The count is the server's claim: an honest server's bounds
    a malicious branch; a malicious server claims the parameters' most, which is where
    this was. The error bound stays the parameters' (the larger), so an honest sum is
    never clamped (nor, with noise, refused by the server) beyond the error's tail."""
    summands = params.num_clients if contributions is None else contributions
    summands = min(max(summands, 1), params.num_clients)
    honest = summands * params.value_bound + params.error_bound(params.num_clients)
    return honest + RANGE_TAIL_Z * noise_stddev


def clamp_to_plausible(values: np.ndarray, reach: float) -> int:
    """Clamp the exact decrypted sum ``values`` (float64, in place) into ``[-reach,
    reach]`` per coordinate, ``reach`` being :func:`plausible_range` with no noise; the
    number of coordinates it moved. A non-finite coordinate (no honest decryption has
    one) counts as moved: an infinity goes to the bound of its sign, NaN to 0.

    Why clamp rather than refuse: the key holder refused a sum beyond the range
    (``ImplausibleSum``, until 2026-12-06), and that refusal was one bit of the exact
    sum, neither noised nor charged; with a malicious branch's out-of-range upload in
    the sum it was a threshold on the honest branches' values. Clamped, every sum is
    released the same way (noised, at the planned noise), so the server's view no longer
    says whether the range was crossed.

    Why the planned charge covers it: the accountant charges a Gaussian of std ``sigma``
    on a sum whose L2 sensitivity is the clip ``C`` (zero-out-one-client adjacency: one
    branch's update, ``||x||_2 <= C``, replaced by zero). Clamping is the projection
    ``P`` onto the box ``[-reach, reach]^d``, and per coordinate ``|clip(a) - clip(b)|
    <= |a - b|`` (clip is monotone with slope at most 1), so ``||P(s) - P(s')||_2 <=
    ||s - s'||_2 <= C`` for neighbouring sums: ``P(s) + N(0, sigma^2 I)`` is a Gaussian
    mechanism of sensitivity at most ``C``, the charge planned. The box depends on the
    parameters and the contributions the aggregate claims only (the cohort: the same for
    both neighbours, no one's data), and a malicious branch's upload ``a`` is a fixed
    shift: ``s -> P(s + a)`` is 1-Lipschitz too. The clamp comes before the noise: after
    it, a crafted ciphertext's huge decryption would still beat the noise.

    Why the range is the exact sum's (``c*B`` plus the CKKS error bound, no noise tail):
    an honest sum's true value lies within ``c*B``, and its decryption within the
    parameters' error bound of it (7 worst-slot deviations, about 30 times the measured
    error's std; a coordinate beyond it about once in 4*10^11), so honest rounds are not
    clamped in practice; and if one coordinate were, projecting onto a box that holds the
    true sum only moves it closer to it, so the report's error bound still holds. A noise
    tail (:data:`RANGE_TAIL_Z` deviations) belongs to the noised reply, which the server
    checks: in the clamp it would let a server asking for more noise widen what a sum
    may decrypt to. A crafted query's decryption is held to the same range as before,
    so the bound on what it learns of the key, ``1/2 log2(1 + (reach/sigma)^2)`` bits a
    coordinate, holds, now without the refusal's extra bit.

    Why every pass runs on every call: the passes that move coordinates ran only when
    some coordinate was beyond the box, so a slice holding one took longer to clamp
    (about 0.7 ms against 1.2 ms for 65 536 values, measured on a loaded host), just
    before the reply left: with a malicious branch's upload set near the edge in chosen
    slices, the reply's timing said whether an honest coordinate of each was above a
    threshold, the bit the clamp replaced the refusal to remove (second review,
    2026-12-06, tests/aggregation/test_keyholder_clamp_oblivious.py). The same
    operations now run whatever the values: count, NaN to 0 (``copyto`` under a mask),
    clip (an infinity to the bound of its sign)."""
    moved = values.size - int(np.count_nonzero(np.abs(values) <= reach))  # NaN compares False
    np.copyto(values, 0.0, where=np.isnan(values))
    np.clip(values, -reach, reach, out=values)
    return moved


def check_federation(named: str, serves: str | None, round_number: int, *, what: str) -> None:
    """Refuse a request (``what``: a key request, a decryption) that names another
    federation (``named``: "" for none) than the one the key holder serves (``serves``).

    The text is what the server hears: both names are federations' public names, never a
    local path (the refusal reply cuts it at 200 bytes, as any refusal text: with two
    64-character names the end is cut, and the key holder's own log has it whole)."""
    if named == (serves or ""):
        return
    asked = f"federation {named!r}" if named else "no federation"
    said = (
        f"federation {serves!r} only (its [federation] name)"
        if serves
        else "no federation (it has no [federation] name)"
    )
    raise WrongFederation(
        f"{what} of round {round_number} for {asked} refused: this key holder serves {said}"
    )


def _config_error(key: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"[key_holder] {key}: {message}")


def _unknown_keys(unknown: list[str]) -> str:
    """``unknown key 'max_decrypts' in [key_holder]; did you mean 'max_decryptions'?``:
    each unknown key with the closest known spelling (:func:`~secagg.errors.closest_spelling`,
    every config reader's rule), the known keys only when none is close.

    Why: a misspelt key listed all five known keys and left the reader to spot the
    near one, unlike the federation config and a branch's ``[branch]`` table, which
    name it (review, 2026-12-05)."""
    hints = [(name, near) for name in unknown if (near := closest_spelling(name, POLICY_KEYS))]
    if len(unknown) == 1:
        said = f"unknown key {unknown[0]!r} in [key_holder]"
    else:
        said = f"unknown keys {', '.join(map(repr, unknown))} in [key_holder]"
    if not hints:
        return f"{said}; known: {', '.join(POLICY_KEYS)}"
    if len(unknown) == 1:
        return f"{said}; did you mean {hints[0][1]!r}?"
    return f"{said}; " + "; ".join(f"{name!r}: did you mean {near!r}?" for name, near in hints)


def _refuse_blank(key: str, value: str | Path) -> None:
    """Refuse a path of only blanks (spaces, tabs, line breaks; Unicode's too).

    Why: an empty path was refused, ``"  "`` taken: ``state = "  "`` kept the key
    holder's count of decryptions, which bounds its privacy loss, in a file called
    "  " beside the policy. A blank name is never the one meant (an unset variable in a
    generated file); ``secagg keyholder`` refuses it before the library in its own words
    (tests/aggregation/test_keyholder_policy_blank_state_library.py)."""
    if not str(value).strip():
        how = "empty" if str(value) == "" else "blank"
        raise _config_error(key, f"is {how} ({str(value)!r}): it must name a file")


def config_path(key: str, value: Any, base_dir: Path | None) -> Path:
    """A file path of the ``[key_holder]`` table, relative ones against ``base_dir``;
    an empty or blank one is refused naming ``key`` (:func:`_refuse_blank`)."""
    if not isinstance(value, str | Path) or not str(value):
        raise _config_error(key, f"must be a file path, got {value!r}")
    _refuse_blank(key, value)
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _config_error(key, f"must be a finite number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int past the floats (10**400): math.isfinite raised it
        raise _config_error(
            key,
            f"must be a finite number, got an integer of {decimal_digits(value)} digits",
        ) from None
    if not math.isfinite(number):
        raise _config_error(key, f"must be a finite number, got {value!r}")
    return number


def _positive_at_most(key: str, value: Any, most: float, why: str) -> float:
    """``value`` as a number above 0 and at most ``most``, else the key's one-line error;
    ``why`` says where the upper bound comes from (the caps' one rule, written once)."""
    number = _number(key, value)
    if not 0 < number <= most:
        raise _config_error(key, f"must be above 0 and at most {most:g} ({why}), got {value!r}")
    return number


def _integer(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _config_error(key, f"must be an integer, got {value!r}")
    return value


@dataclass(frozen=True)
class KeyHolderPolicy:
    """What the CKKS key holder enforces on every request (see the module docstring).

    ``noise_stddev``: the key holder's own Gaussian noise std per decryption (0:
    only the floor); the server's request is honoured only when larger.
    ``min_contributions``: the fewest summands an aggregate must claim (at least 2).
    ``max_decryptions``: a lifetime cap; **required when** ``noise_stddev > 0``
    (None is accepted only for a floor-only key holder: tests, simulations without DP).
    ``state_path``: where served rounds and the count persist (None: memory only).
    ``dimension``: the only sum length decrypted (None: any; in-memory runs, whose
    rounds the key holder's caller plans itself).
    ``federation``: the name of the only federation whose requests are answered (the
    runtime binds it from the federation's config, ``[federation] name``); None: only
    requests naming no federation (in-memory runs).
    ``max_clients``, ``max_value_bound``, ``min_precision``: the most clients, the largest
    value bound and the finest precision of a design point this key holder makes (or
    uses) a key for; a key request beyond any is refused (:meth:`check_design`) before any
    key work. None: no cap of the policy's own (in-memory runs, whose server is the
    caller's code; the federation's config caps the design point when the key holder
    holds it); the config-less ``secagg keyholder`` takes :data:`CONFIGLESS_MAX_CLIENTS`,
    :data:`CONFIGLESS_MAX_VALUE_BOUND` and :data:`CONFIGLESS_MIN_PRECISION` unless its
    table sets them.
    ``max_noise_stddev``: the largest noise std added at a server's request (None:
    :data:`NOISE_CAP_PER_RANGE` times the design point's clients x value bound; at least
    ``noise_stddev``). ``max_dimension``: the longest sum decrypted (None: no cap of its
    own; the config-less ``secagg keyholder`` takes :data:`CONFIGLESS_MAX_DIMENSION`).

    Why the cap is required with noise: a key holder that adds its own DP noise
    promises that what it releases is differentially private, and every decryption of
    a noised aggregate is one more release of it. The server chooses the round numbers
    (it can invent new ones) and what it asks to have decrypted, so without a cap a
    hostile server spends the key holder's privacy without bound: averaging k
    releases of one update divides its noise by sqrt(k). The cap (kept across restarts
    by ``state_path``) is what bounds k, so a key holder with noise configured and no
    cap refuses to start, naming ``max_decryptions``, instead of promising privacy it
    cannot bound. Size it for the federation's rounds (the key holder serves one
    decryption a round), plus restarts' spare.
    """

    noise_stddev: float = 0.0
    min_contributions: int = MIN_CONTRIBUTIONS_FLOOR
    max_decryptions: int | None = None
    state_path: Path | None = None
    dimension: int | None = None
    federation: str | None = None
    max_clients: int | None = None
    max_value_bound: float | None = None
    min_precision: float | None = None
    max_noise_stddev: float | None = None
    max_dimension: int | None = None

    def __post_init__(self) -> None:
        std = _number("noise_stddev", self.noise_stddev)
        if std < 0:
            raise _config_error("noise_stddev", f"must be >= 0, got {std!r}")
        if std > MAX_NOISE_STDDEV:
            raise _config_error(
                "noise_stddev",
                f"must be at most {MAX_NOISE_STDDEV:g} (the most central noise a federation "
                f"can plan: noise multiplier {MAX_NOISE_MULTIPLIER:g} x clip {MAX_CLIP:g}), "
                f"got {std!r}: every sum would be noise",
            )
        object.__setattr__(self, "noise_stddev", std)
        least = _integer("min_contributions", self.min_contributions)
        if least < MIN_CONTRIBUTIONS_FLOOR:
            raise _config_error(
                "min_contributions",
                f"must be >= {MIN_CONTRIBUTIONS_FLOOR} (one summand is one client's update), "
                f"got {least}",
            )
        if least > MAX_SPEC_CLIENTS:
            # no round has more clients, so none could be decrypted: 10**9 started and
            # refused every round one at a time (config review, 2026-12-06)
            raise _config_error(
                "min_contributions",
                f"must be at most {MAX_SPEC_CLIENTS} (the most clients a round can have), "
                f"got {least}: no round could reach it",
            )
        if self.max_decryptions is not None:
            cap = _integer("max_decryptions", self.max_decryptions)
            if cap < 1:
                raise _config_error("max_decryptions", f"must be >= 1, got {cap}")
        elif std > 0:
            # each decryption of a noised sum is one more DP release (see the docstring)
            raise _config_error(
                "max_decryptions",
                f"required with noise_stddev = {std:g}: every decryption is one more release "
                "of a noised sum and the server chooses how many it asks for; set the "
                "lifetime cap (the federation's rounds, with some spare)",
            )
        if self.dimension is not None:
            length = _integer("dimension", self.dimension)
            if not 1 <= length <= _MAX_DIMENSION:
                raise _config_error(
                    "dimension", f"must be in [1, {_MAX_DIMENSION}] values, got {length}"
                )
        if self.federation is not None and not (
            isinstance(self.federation, str) and FEDERATION_NAME_PATTERN.fullmatch(self.federation)
        ):
            raise _config_error(
                "federation",
                "must be a federation's name (1 to 64 letters, digits, '.', '_' or '-'), "
                f"got {self.federation!r:.80}",
            )
        if self.max_clients is not None:
            most = _integer("max_clients", self.max_clients)
            if not least <= most <= MAX_SPEC_CLIENTS:
                # below min_contributions no round it makes a key for could be decrypted
                raise _config_error(
                    "max_clients",
                    f"must be in [{least}, {MAX_SPEC_CLIENTS}] (from min_contributions to "
                    f"the most clients a round can have), got {most}",
                )
        if self.max_value_bound is not None:
            bound = _positive_at_most(
                "max_value_bound",
                self.max_value_bound,
                MAX_CLIP,
                "the largest bound on an update any round takes",
            )
            object.__setattr__(self, "max_value_bound", bound)
        if self.min_precision is not None:
            # a design point's precision is at most its value bound, at most MAX_CLIP
            finest = _positive_at_most(
                "min_precision",
                self.min_precision,
                MAX_CLIP,
                "the sum's absolute error: at most the largest value bound",
            )
            object.__setattr__(self, "min_precision", finest)
        if self.max_noise_stddev is not None:
            most_noise = _positive_at_most(
                "max_noise_stddev",
                self.max_noise_stddev,
                MAX_NOISE_STDDEV,
                "the most central noise a federation can plan",
            )
            if most_noise < std:
                # its own noise would be refused whenever the server asked for that much
                raise _config_error(
                    "max_noise_stddev",
                    f"{most_noise:g} is below this key holder's own noise_stddev = {std:g}",
                )
            object.__setattr__(self, "max_noise_stddev", most_noise)
        if self.max_dimension is not None:
            longest = _integer("max_dimension", self.max_dimension)
            if not 1 <= longest <= _MAX_DIMENSION:
                raise _config_error(
                    "max_dimension", f"must be in [1, {_MAX_DIMENSION}] values, got {longest}"
                )
            if self.dimension is not None and self.dimension > longest:
                raise _config_error(
                    "max_dimension",
                    f"{longest} is below this key holder's own dimension = {self.dimension}: "
                    "it would refuse every round",
                )
        if self.state_path is not None and not isinstance(self.state_path, Path):
            if not isinstance(self.state_path, str) or not self.state_path:
                raise _config_error("state", f"must be a file path, got {self.state_path!r}")
            object.__setattr__(self, "state_path", Path(self.state_path))
        if self.state_path is not None:  # a Path("  ") too: str and Path alike
            _refuse_blank("state", self.state_path)

    @classmethod
    def from_dict(
        cls, section: Mapping[str, Any], *, base_dir: Path | None = None
    ) -> KeyHolderPolicy:
        """The policy of a ``[key_holder]`` TOML section; a relative ``state`` is
        resolved against ``base_dir`` (the config file's folder).

        Keys: ``noise_stddev`` (number >= 0), ``min_contributions`` (int >= 2),
        ``max_decryptions`` (int >= 1; required when ``noise_stddev`` > 0),
        ``dimension`` (int >= 1), ``state`` (path), ``federation`` (a federation's name),
        ``max_clients`` (int, min_contributions to 10⁶), ``max_value_bound`` (number in
        (0, 10⁶]), ``min_precision`` (number in (0, 10⁶]), ``max_noise_stddev`` (number in
        (0, 10¹⁰], at least ``noise_stddev``), ``max_dimension`` (int >= 1, at least
        ``dimension``). Any other key, or a value of the wrong type, raises a one-line
        ConfigurationError naming the key.
        """
        if not isinstance(section, Mapping):
            raise ConfigurationError(f"[key_holder] must be a table, got {type(section).__name__}")
        unknown = sorted(map(str, set(section) - set(POLICY_KEYS)))
        if unknown:
            raise ConfigurationError(_unknown_keys(unknown))
        state = section.get("state")
        path = None if state is None else config_path("state", state, base_dir)
        return cls(
            noise_stddev=section.get("noise_stddev", 0.0),
            min_contributions=section.get("min_contributions", MIN_CONTRIBUTIONS_FLOOR),
            max_decryptions=section.get("max_decryptions"),
            state_path=path,
            dimension=section.get("dimension"),
            federation=section.get("federation"),
            max_clients=section.get("max_clients"),
            max_value_bound=section.get("max_value_bound"),
            min_precision=section.get("min_precision"),
            max_noise_stddev=section.get("max_noise_stddev"),
            max_dimension=section.get("max_dimension"),
        )

    def check_dimension(self, dimension: int, *, what: str = "a decryption") -> None:
        """Refuse a request for a sum of another length than this key holder's own:
        ``what`` names the request (a round opened by a key request, a decryption)."""
        if self.dimension is not None and dimension != self.dimension:
            raise WrongDimension(
                f"{what} of {dimension} values refused: this key holder decrypts sums "
                f"of {self.dimension} values only (its [key_holder] dimension)"
            )
        if self.max_dimension is not None and dimension > self.max_dimension:
            raise WrongDimension(
                f"{what} of {dimension} values refused: this key holder decrypts sums "
                f"of at most {self.max_dimension} values (its [key_holder] max_dimension)"
            )

    def noise_cap(self, params: CKKSParameters) -> float:
        """The largest noise std this key holder adds at a server's request under
        ``params``: its ``max_noise_stddev``, else :data:`NOISE_CAP_PER_RANGE` times the
        design point's largest honest sum per coordinate (clients x value bound), never
        below its own ``noise_stddev``."""
        if self.max_noise_stddev is not None:
            return self.max_noise_stddev
        derived = NOISE_CAP_PER_RANGE * params.num_clients * params.value_bound
        return max(derived, self.noise_stddev)

    def check_noise_request(self, params: CKKSParameters, requested: float) -> None:
        """Refuse (:class:`NoiseRequestTooLarge`, one line) a decryption whose requested
        noise std is above :meth:`noise_cap`, or whose noised sum a float64 cannot hold:
        called before any decryption, so nothing is spent.

        The second refusal is defence in depth that no configured policy reaches: the cap
        is at most ``max(MAX_NOISE_STDDEV, NOISE_CAP_PER_RANGE x clients x value bound)``
        (10¹⁰ and a policy's own ``noise_stddev`` are finite; clients x value bound is
        below 2^880, about 10²⁶⁵, or the parameters refuse to be made: their modulus must
        hold it), so 9 deviations of any admitted std stay finite
        (tests/aggregation/test_keyholder_noise_overflow.py). It holds for a policy whose
        :meth:`noise_cap` is not this one's (a subclass, a future default): a round spent
        on a sum of +-inf is one the server could only refuse. Before 2026-12-06 it was a
        branch of the decryption that named the server's request malformed."""
        cap = self.noise_cap(params)
        if requested > cap:
            said = (
                "its [key_holder] max_noise_stddev"
                if self.max_noise_stddev is not None
                else f"{NOISE_CAP_PER_RANGE:g} x its design point's {params.num_clients} "
                f"clients x value bound {params.value_bound:g}; [key_holder] max_noise_stddev "
                "sets another"
            )
            raise NoiseRequestTooLarge(
                f"a decryption with noise std {requested:g} refused: this key holder adds at "
                f"most {cap:g} at a server's request ({said})"
            )
        # the cap first: past it, this is reached by no configured policy (see above)
        if not math.isfinite(plausible_range(params, self.noise_for(params, requested))):
            # a Box-Muller deviate is at most 8.6 std and the range allows 9: within it, no
            # noised coordinate overflows
            raise NoiseRequestTooLarge(
                f"a decryption with noise std {requested:g} refused: its noised sum "
                "overflows a float64"
            )

    def check_design(self, num_clients: int, value_bound: float, precision: float) -> None:
        """Refuse a key request whose design point sums more clients, values of a larger
        bound, or to a finer precision, than this key holder's own ``max_clients`` /
        ``max_value_bound`` / ``min_precision``.

        Why: ``c·B`` (clients times value bound) is the plausible-sum range a decryption
        is held to before the noise, the one bound on what a crafted query learns of the
        key under the key holder's own noise (½·log2(1 + (c·B/sigma)²) bits a coordinate).
        A key holder without the federation's config took whatever design point the
        server's key request carried: 10⁵ clients and B = 10⁶ was a range 10⁸ times that
        of 1 000 clients at B = 1, so the server decided what the key holder's protection
        was worth.

        The precision likewise: the noise floor (a key holder's noise without its own
        ``noise_stddev``) follows it, so the finest precision a ring admits let a crafted
        query learn about 44 bits a coordinate at the floor instead of about 21 at 10⁻⁶."""
        for key, asked, most in (
            ("max_clients", num_clients, self.max_clients),
            ("max_value_bound", value_bound, self.max_value_bound),
        ):
            if most is not None and asked > most:
                raise KeyHolderRefusal(
                    f"a key request for {num_clients} clients at value bound {value_bound:g} "
                    f"refused: this key holder makes keys for at most its [key_holder] "
                    f"{key} = {most:g}"
                )
        if self.min_precision is not None and precision < self.min_precision:
            raise KeyHolderRefusal(
                f"a key request for precision {precision:g} refused: this key holder makes "
                f"keys for a precision no finer than its [key_holder] min_precision = "
                f"{self.min_precision:g}"
            )

    def check_own_design(
        self, num_clients: int, value_bound: float, precision: float, *, whose: str
    ) -> list[str]:
        """Refuse to start (a one-line ConfigurationError naming the key) if this policy's
        caps, or its ``min_contributions``, can never admit the key holder's own design
        point (``whose``: "its key's", a
        key file's, or "the federation's", from its config); return the caps that are
        looser than it (they have no effect: the design point holds, and is stricter).

        Why at start: the caps are checked against each key request's design point, and
        an honest server asks for the key holder's own (its key's, or its federation's),
        so caps below it started and then refused every round, one at a time, each as a
        refusal the server recorded, never as the key holder's own misconfiguration."""
        design = f"{num_clients} clients, value bound {value_bound:g}, precision {precision:g}"
        caps = (
            ("max_clients", self.max_clients, num_clients > (self.max_clients or num_clients)),
            (
                "max_value_bound",
                self.max_value_bound,
                value_bound > (self.max_value_bound or value_bound),
            ),
            (
                "min_precision",
                self.min_precision,
                precision < (self.min_precision or precision),
            ),
        )
        if self.min_contributions > num_clients:
            # no round of the design point has that many clients to sum
            raise _config_error(
                "min_contributions",
                f"{self.min_contributions} can never be reached by {whose} design point "
                f"({design}): it would refuse every round; refusing to start",
            )
        for key, cap, refuses in caps:
            if refuses:
                raise _config_error(
                    key,
                    f"{cap:g} can never admit {whose} design point ({design}): it "
                    "would refuse every round; refusing to start (widen the cap, or remove "
                    "it: the design point holds)",
                )
        looser = []
        for key, cap, asked in (
            ("max_clients", self.max_clients, num_clients),
            ("max_value_bound", self.max_value_bound, value_bound),
        ):
            if cap is not None and cap > asked:
                looser.append(f"{key} = {cap:g}")
        if self.min_precision is not None and self.min_precision < precision:
            looser.append(f"min_precision = {self.min_precision:g}")
        return looser

    def noise_for(self, params: CKKSParameters, requested: float) -> float:
        """The std a decryption under ``params`` gets: never below the policy or the floor."""
        return max(self.noise_stddev, float(requested), noise_floor(params))


def configless_caps(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """A config-less key holder's ``[key_holder]`` settings with its design caps:
    ``max_clients``, ``max_value_bound`` and ``min_precision`` the table gives, else
    :data:`CONFIGLESS_MAX_CLIENTS`, :data:`CONFIGLESS_MAX_VALUE_BOUND` and
    :data:`CONFIGLESS_MIN_PRECISION` (times ``max_value_bound`` when that is below 1), and
    ``max_dimension`` the table gives, else :data:`CONFIGLESS_MAX_DIMENSION` (or its own
    ``dimension``, when longer).

    Why: with neither the federation's config nor a key file, the key is made for the
    design point the server's first key request carries, and the clients and value bound
    in it set the plausible range every decryption is held to (the bound on what a
    crafted query learns of the key), and the precision in it the noise floor: the
    server's choice, unless the key holder has one of its own. A federation of more
    clients, a larger bound or a finer precision sets them in the ``--policy`` table (or
    runs the key holder with its config)."""
    values = dict(settings or {})
    least = values.get("min_contributions")
    fewest = least if isinstance(least, int) and not isinstance(least, bool) else 0
    values.setdefault("max_clients", max(CONFIGLESS_MAX_CLIENTS, fewest))  # reachable
    bound = values.setdefault("max_value_bound", CONFIGLESS_MAX_VALUE_BOUND)
    # the default federation's precision at the largest bound admitted, when that is below
    # 1 (10⁻⁶·B: the same bound-to-precision ratio): a table narrowing the bound to 0.01
    # refused its own federation's default precision, 10⁻⁸, for a cap it had not set. A
    # bound that is no number is left to the policy's own one-line refusal
    narrower = isinstance(bound, int | float) and not isinstance(bound, bool) and 0 < bound < 1
    scale = float(bound) if narrower else 1.0
    values.setdefault("min_precision", CONFIGLESS_MIN_PRECISION * scale)
    # a longer agreed dimension is its operator's: the default cap admits it
    length = values.get("dimension")
    own = length if isinstance(length, int) and not isinstance(length, bool) else 0
    values.setdefault("max_dimension", max(CONFIGLESS_MAX_DIMENSION, own))
    return values


# --- how fast rounds are opened ---------------------------------------------------

#: new rounds a key holder opens (each written to disk before its key leaves) after its
#: last decryption, or its start, before further openings are paced: an honest server
#: opens one per round, and a round that aborts after its key request (too few uploads)
#: uses one up; the runtime's server stops after 5 such in a row (its default
#: ``max_consecutive_aborts``), before these are used
OPENINGS_WITHOUT_DECRYPTION = 8
#: seconds per further opening once those are used (an honest round, which trains and
#: encrypts between its key request and its decryption, takes longer than this)
OPENING_INTERVAL = 1.0


class OpeningAllowance:
    """How many new rounds the key holder may open now: :data:`OPENINGS_WITHOUT_DECRYPTION`
    at once, then one per :data:`OPENING_INTERVAL` seconds (a token bucket), full again
    after every decryption.

    Why: opening a round costs the key holder a durable write (two fsyncs:
    :meth:`~secagg.aggregation.ckks.KeyHolderSession._save_opened`) and costs the server
    nothing, so a server raising the round number on every key request made the key holder
    write at the server's pace (2.00 fsyncs a request, as fast as requests came) and got
    no decryption for it. A decryption spends one of the lifetime cap (``max_decryptions``),
    so it is what earns new openings; time earns them slowly, so a federation whose rounds
    keep aborting after their key request is slowed, never stopped. Kept in memory only: a
    restart (the key holder operator's act, never the server's) starts it full.

    ``clock``: seconds, increasing (``time.monotonic`` by default; tests pass their own)."""

    def __init__(
        self,
        burst: int = OPENINGS_WITHOUT_DECRYPTION,
        interval: float = OPENING_INTERVAL,
        clock: Any = None,
    ) -> None:
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._available = float(burst)
        self._since = self._now()
        #: refusals since the last opening: the first of a streak is logged, the rest not
        self.refused = 0

    def _now(self) -> float:
        return float((self._clock or monotonic)())

    def _level(self, now: float) -> float:
        """Openings available at ``now`` (the bucket refilled, capped at the burst)."""
        return min(float(self.burst), self._available + (now - self._since) / self.interval)

    def take(self, round_number: int) -> None:
        """Use one opening for ``round_number``, or refuse it
        (:class:`OpeningsOutpaceDecryptions`) and change nothing but the refusal count."""
        now = self._now()
        available = self._level(now)
        if available < 1.0:
            due = (1.0 - available) * self.interval
            if self.refused == 0:
                log.warning(
                    "key holder: new rounds come faster than decryptions (%d opened beyond "
                    "the last one, then one every %g s): refused until the next is due, in "
                    "%.1f s",
                    self.burst,
                    self.interval,
                    due,
                )
            self.refused += 1
            raise OpeningsOutpaceDecryptions(
                f"round {round_number} not opened: the key holder opens {self.burst} rounds "
                f"beyond its last decryption, then one every {self.interval:g} s (the next "
                f"in {due:.1f} s)"
            )
        self._available, self._since, self.refused = available - 1.0, now, 0

    def renew(self) -> None:
        """A decryption was served: the openings are available again in full."""
        self._available, self._since = float(self.burst), self._now()


# --- what has been served ------------------------------------------------------


class StateChanged(KeyHolderRefusal):
    """The key holder's state file no longer holds what this process last wrote: another
    key holder process uses it (each would otherwise decrypt the same round once, each
    by its own record), or it was replaced or removed under it; or (``sticky`` false) its
    lock is held by another process past the wait.

    Once the file was seen to change, the process refuses every request until its
    operator restarts it (:attr:`DecryptionRecord.stale`)."""

    def __init__(self, message: str, *, local_detail: str = "", sticky: bool = True) -> None:
        super().__init__(message, local_detail=local_detail)
        self.sticky = sticky


#: the largest state file read: this release's record is under 200 bytes, but an earlier
#: release's listed every round decrypted (100 000 decryptions: 589 kB); 64 MiB holds
#: some ten million of those, and past it the file is no record
MAX_RECORD_BYTES = 64 * 1024 * 1024


class DecryptionRecordUnwritable(SecAggError):
    """The machine refused the key holder's record at start, its read or its upgrade (a
    full disk, an I/O error, no permission, another process holding its lock): the key
    holder stops, exit 1 (exit 2 where the OSError says the path names no file).

    Why not a :class:`~secagg.errors.ConfigurationError` (exit 2, "a mistake in the
    options or files"): an upgrade of the record that failed on a full disk said so,
    sending the operator to a state path that was right, and so did a record the key
    holder may not read (path-failure review, 2026-12-07). The OSError is its cause
    (``__cause__``), whose errno the command's status follows."""


def _os_cause(exc: OSError) -> str:
    """An OSError's cause and path in one phrase, without its errno number."""
    if isinstance(exc, LockTimeout) or not exc.strerror:
        return str(exc) or type(exc).__name__
    return exc.strerror + (f": {exc.filename}" if exc.filename else "")


class _Unreadable(Exception):
    """A state file that does not hold a record (why, in a few words)."""


class DecryptionRecord:
    """The last round number served and the decryption count of one federation (or of
    none, in memory), optionally kept in a file.

    :meth:`check` refuses before any work; :meth:`commit` records a decryption
    (and writes the file) before its result may leave.

    The file names the federation its rounds are of (version 2): a key holder of
    another federation refuses to start over it, so no two federations' rounds share one
    sequence of round numbers and one count. A version-1 file (which named none) is read
    and rewritten at once as this key holder's federation's; its rounds were served by
    this key, so they stay served (refusing more, never less).

    With a file, the file is the one record (several processes may be started over
    it): :meth:`check` and :meth:`commit` compare it with this process's before going
    on. A file found to hold anything else (another process's record, a replaced or
    removed file, bytes that are no record) makes the record :attr:`stale`, and every
    later request is refused with the same :class:`StateChanged` until the process is
    restarted: failing closed, because which of the two records is the true one is for
    an operator to tell (a second process is stopped, a replaced file restored), and a
    restart then trusts the file.
    """

    def __init__(self, path: Path | None = None, federation: str | None = None) -> None:
        self.path = path
        #: the federation whose rounds these are (None: requests naming none, in memory)
        self.federation = federation
        #: the last round decrypted, as a list of at most one (the file's ``rounds``).
        #: Why only the last: :meth:`check` refuses every round at or below it, so no
        #: earlier one is ever consulted; kept whole, the list grew by one a decryption
        #: and was rewritten (and re-read twice) in full for each one, without end for a
        #: key holder with no cap (100 000 decryptions: a 589 kB file, 70 ms a
        #: decryption). A file of an earlier release, which lists every round, is read as
        #: its last and rewritten so at the next write; this release's file (the same
        #: version and fields, a list of one) is still read by an earlier release.
        self.rounds: list[int] = []
        self.decryptions = 0
        #: the refusal every request gets once the file was seen to change (None: in step)
        self.stale: StateChanged | None = None
        if path is not None:  # no file yet: nothing served
            self.rounds, self.decryptions = self._open(path, federation)

    @property
    def last_round(self) -> int | None:
        return self.rounds[-1] if self.rounds else None

    @staticmethod
    def _parse(path: Path) -> tuple[list[int], int, str | None, int | None]:
        """The record ``path`` holds: its rounds, its count, the federation it names and
        its version (none yet: no file, version None; version 1 names no federation);
        :class:`_Unreadable` if it holds no record, the :class:`OSError` if it cannot be
        read (a lost permission, an I/O error: nothing is known to have changed)."""
        try:
            # one open, bounded: a file swapped for a named pipe blocked this read forever
            # (a read by path), at start and before every commit
            raw = read_regular_file(path, MAX_RECORD_BYTES, "a key holder's state file")
        except FileNotFoundError:
            return [], 0, None, None
        except (NotARegularFile, FileTooLarge) as exc:
            raise _Unreadable(str(exc)) from None  # no record: fail closed, as for garbage
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("version") not in _STATE_VERSIONS_READ:
                raise ValueError("unknown version")
            version = data["version"]
            if isinstance(version, bool) or not isinstance(version, int):
                raise ValueError("unknown version")
            rounds, count = data["rounds"], data["decryptions"]
            federation = data["federation"] if version >= 2 else None
            expected = {"version", "rounds", "decryptions"} | (
                {"federation"} if version >= 2 else set()
            )
            if set(data) != expected:
                raise ValueError(f"fields {sorted(data)}, not {sorted(expected)}")
            if (
                not isinstance(rounds, list)
                or any(isinstance(r, bool) or not isinstance(r, int) for r in rounds)
                or rounds != sorted(set(rounds))
                or isinstance(count, bool)
                or not isinstance(count, int)
                or count < len(rounds)
                or not (
                    federation is None
                    or (
                        isinstance(federation, str)
                        and FEDERATION_NAME_PATTERN.fullmatch(federation)
                    )
                )
            ):
                raise ValueError("inconsistent fields")
        except (ValueError, KeyError, TypeError) as exc:
            raise _Unreadable(str(exc)) from None
        # the refusal rules need the last round only (:meth:`check`: a round at or below
        # it is refused), so an older file's whole list is read as its last (see rounds)
        return rounds[-1:], count, federation, version

    @classmethod
    def _open(cls, path: Path, federation: str | None) -> tuple[list[int], int]:
        """The record at start: fail closed on a file that holds no record or another
        federation's; a version-1 file is upgraded (rewritten naming ``federation``)."""
        # fail closed either way: a key holder that forgot what it served could serve it again
        try:
            rounds, count, found, version = cls._parse(path)
        except _Unreadable as exc:  # the file holds no record: the state's mistake
            raise ConfigurationError(
                f"[key_holder] state: cannot read {path} ({exc}); refusing to start"
            ) from None
        except OSError as exc:  # no permission, an I/O error: the machine's, as _upgrade's
            raise DecryptionRecordUnwritable(
                f"[key_holder] state: cannot read {path} ({_os_cause(exc)}); refusing to start"
            ) from exc
        if version is None:
            cls._refuse_if_removed(path)
        if version is not None and version >= 2 and found != federation:
            if found is None and federation is not None and not rounds and count == 0:
                # nothing served under no federation: nothing to count against another
                cls._upgrade(path, federation, rounds, count, version=version)
                return rounds, count
            if found is None:
                raise ConfigurationError(
                    f"[key_holder] state: {path} records {count} decryption(s) served to no "
                    f"federation (last round {rounds[-1] if rounds else 'none'}), and this key "
                    f"holder serves federation {federation!r}; refusing to start, since which "
                    "federation's data those releases were of is not known (give this key "
                    "holder its own state file, its max_decryptions lowered by those "
                    f"{count} if they were this federation's)"
                )
            raise ConfigurationError(
                f"[key_holder] state: {path} records the rounds of {_federation(found)}, and "
                f"this key holder serves {_federation(federation)}; refusing to start (give "
                "each federation's key holder its own state file, or serve the federation "
                "the record names)"
            )
        if version == 1 and federation is not None:
            cls._upgrade(path, federation, rounds, count, version=1)
        return rounds, count

    @staticmethod
    def _refuse_if_removed(path: Path) -> None:
        """Refuse to start over a missing record that a key holder has run over before:
        its ``<state>.opened`` or ``<state>.lock`` is still beside it.

        Why: the record is what keeps each round decrypted once and the lifetime count
        (``max_decryptions``: the bound on the DP releases of one federation's data) across
        restarts. A missing file was read as "nothing served yet", so deleting it (an
        operator's clean-up, or anyone with write access to the folder but not the key)
        and restarting reset the count and let every round be decrypted again. A first
        start has neither file; a key holder writes its record when it opens its first
        round (:meth:`create`, which takes the lock), before ``.opened``, and takes the
        lock to record every decryption, so either file without the record is a record
        removed. (A key holder of an earlier release restarted in its first round left an
        ``.opened`` and no record: refused too, and its operator, who knows no round was
        decrypted, removes the ``.opened`` as the refusal says.)"""
        found = [p.name for p in (opened_path(path), lock_path(path)) if os.path.lexists(p)]
        if found:
            raise ConfigurationError(
                f"[key_holder] state: {path} is missing, but {' and '.join(found)} beside it "
                "show that a key holder opened or decrypted rounds over it; refusing to start "
                "afresh, which would forget the rounds it decrypted and its count (restore "
                f"{path.name} from a backup; only if no round was ever decrypted under it, "
                "remove those files to start afresh)"
            )

    @staticmethod
    def _upgrade(
        path: Path, federation: str, rounds: list[int], count: int, *, version: int
    ) -> None:
        """Rewrite a record naming no federation as ``federation``'s, under the record's
        lock, before any request is answered: a version-1 record (which named none; its
        rounds were served by this key, so they stay served: refusing more, never less),
        or a version-2 one of no federation that served nothing (a key holder run without
        a federation that opened a round and decrypted none: :meth:`create` wrote it).

        Why the latter: such a record stopped a key holder given its federation at start
        ("records the rounds of no federation"), although it had no round to count
        against anyone; one that served rounds under no federation still stops it
        (:meth:`_open`)."""
        try:
            with exclusive_lock(lock_path(path)):
                again = DecryptionRecord._parse(path)
                if again != (rounds, count, None, version):
                    raise _Unreadable("it changed while it was read")
                write_json_atomically(path, _document(federation, rounds, count))
        except _Unreadable as exc:  # the file, not the machine: the state's mistake
            raise ConfigurationError(
                f"[key_holder] state: cannot upgrade {path} to record federation "
                f"{federation!r} ({exc}); refusing to start"
            ) from None
        except (LockTimeout, OSError) as exc:  # a held lock, a full disk: the machine's
            raise DecryptionRecordUnwritable(
                f"[key_holder] state: cannot upgrade {path} to record federation "
                f"{federation!r} ({_os_cause(exc)}); refusing to start"
            ) from exc
        log.info(
            "key holder: %s (version %d, no federation) %s: its %d decryptions are federation %r's",
            path,
            version,
            f"upgraded to version {_STATE_VERSION}" if version < _STATE_VERSION else "adopted",
            count,
            federation,
        )

    def _refuse_if_changed(self, path: Path, round_number: int) -> None:
        """Read the file again: one that no longer holds this process's record makes the
        record stale and refuses ``round_number`` (:class:`StateChanged`, then for every
        request until a restart).

        Why: a second key holder process started over the same key and state (a
        deploy that left the old one running) kept its own record in memory, so each
        process decrypted a round once: the round twice, and the cap counted in two
        halves. The record is read when the process starts; re-reading it before each
        commit makes the file, not the process, the one record (review, 2026-12-05).
        Re-read when a round is opened too (:meth:`check`), so the stale process refuses
        the round before any branch trains for it, not after every branch uploaded."""
        try:
            rounds, count, named, version = self._parse(path)
        except OSError as exc:
            # not stale: nothing was seen to change, and the next request reads it again
            raise KeyHolderRefusal(
                f"round {round_number} refused: the key holder cannot read its state file "
                f"({exc.strerror or type(exc).__name__}); nothing released",
                local_detail=f"{path}: {exc}",
            ) from None
        except _Unreadable as exc:
            found = f"holds no record ({exc})"
        else:
            # no file yet names nothing: it is in step while nothing was served
            same_federation = version is None or named == self.federation
            if (rounds, count) == (self.rounds, self.decryptions) and same_federation:
                return
            found = f"holds rounds {rounds[-3:]} and {count} decryptions of {_federation(named)}"
        self.stale = StateChanged(
            # at most 200 bytes with the round number: the refusal reply's text is cut there
            "the key holder's state file changed under it (another key holder process, or "
            "the file replaced or removed): it refuses every round until its operator "
            "restarts it",
            local_detail=(
                f"{path} {found}, not this process's rounds {self.rounds[-3:]} and "
                f"{self.decryptions} decryptions of {_federation(self.federation)}: stop any "
                "other key holder process over this key; if the file was replaced or removed, "
                "write this process's record back into it; then restart this key holder (a "
                "restart trusts the file)"
            ),
        )
        raise self._refused(round_number)

    def _refused(self, round_number: int) -> StateChanged:
        """The stale record's refusal, for ``round_number``."""
        assert self.stale is not None
        return StateChanged(
            f"round {round_number} refused: {self.stale}",
            local_detail=self.stale.local_detail,
        )

    def check(self, round_number: int, cap: int | None) -> None:
        """Refuse a replayed or older round number, or a decryption past ``cap``; with a
        file, refuse anything once the file no longer holds this process's record."""
        if self.stale is not None:
            raise self._refused(round_number)
        if self.path is not None:
            self._refuse_if_changed(self.path, round_number)
        last = self.last_round
        if last is not None and round_number <= last:
            raise RoundAlreadyServed(
                f"round {round_number} refused: the key holder has already decrypted "
                f"round {last} and decrypts each round number once, in increasing order"
            )
        if cap is not None and self.decryptions >= cap:
            raise DecryptionCapReached(
                f"round {round_number} refused: the key holder's lifetime cap of {cap} "
                "decryptions is reached"
            )

    def create(self, round_number: int, *, refused: str = "not opened") -> None:
        """Write the record (what is served so far: nothing, on a first start) if its file
        does not exist yet; called when a round is opened, before ``<state>.opened`` is
        written and the key leaves (and by :meth:`commit`, for a key holder that keeps
        no opened round on disk).

        Why: a record missing beside an ``.opened`` file stops the key holder at start
        (:meth:`_refuse_if_removed`), and a first round's ``.opened`` came before any
        record existed, so a key holder restarted in its first round would have been
        refused. One write per record's life (the file then exists); a failure is a
        :class:`KeyHolderRefusal` naming no local path (``refused``: what befalls the
        round, "not opened" or "refused"), and nothing is opened.

        Made without the record's lock (:func:`~secagg.durable.create_json_atomically`
        takes the name only if it is free): made under it, the lock file existed before
        the record did, and a key holder killed between the two left the lock alone,
        which the next start read as a record removed and refused for good, although
        no round had been opened (crash-point enumeration). Another process's record
        made first is kept, and then re-read like any change (:meth:`_refuse_if_changed`)."""
        if self.path is None or os.path.lexists(self.path):
            return
        try:
            create_json_atomically(
                self.path, _document(self.federation, self.rounds, self.decryptions)
            )
        except OSError as exc:
            raise KeyHolderRefusal(
                f"round {round_number} {refused}: the key holder cannot create its state "
                f"file ({exc.strerror or type(exc).__name__})",
                local_detail=f"{self.path}: {exc}",
            ) from None
        self._refuse_if_changed(self.path, round_number)  # made by another process first?

    def commit(self, round_number: int) -> None:
        """Record one decryption of ``round_number``; the file is on disk when this returns.

        Every failure is a :class:`KeyHolderRefusal` whose text names no local path, and
        leaves the file and this record as they were: nothing may be released."""
        if self.stale is not None:
            raise self._refused(round_number)
        rounds, count = [round_number], self.decryptions + 1  # the last is all check needs
        if self.path is not None:
            # the record exists before its lock does (see create): a key holder whose first
            # write is this one keeps no opened round on disk (no persistent key)
            self.create(round_number, refused="refused")
            # the re-read, the check and the write as one step for every process over the
            # file (a lock beside it): re-read alone, two processes both read the old
            # record in the milliseconds before either's rename, and both released the
            # round (review, 2026-12-05)
            try:
                with exclusive_lock(lock_path(self.path)):
                    self._refuse_if_changed(self.path, round_number)
                    write_json_atomically(self.path, _document(self.federation, rounds, count))
            except LockTimeout as exc:
                # not stale: nothing was seen to change, and the holder may yet let go
                raise StateChanged(
                    f"round {round_number} refused: the key holder's state file is locked "
                    "by another process (run one key holder per key)",
                    local_detail=f"{exc}: stop the other key holder process over this key",
                    sticky=False,
                ) from None
            except OSError as exc:
                # a full disk, a lost permission: the file is as it was (atomic write)
                raise KeyHolderRefusal(
                    f"round {round_number} refused: the key holder cannot record the "
                    f"decryption in its state file ({exc.strerror or type(exc).__name__}); "
                    "nothing released",
                    local_detail=f"{self.path}: {exc}",
                ) from None
        self.rounds, self.decryptions = rounds, count


def _document(federation: str | None, rounds: list[int], count: int) -> dict[str, Any]:
    """The record as its file holds it (version :data:`_STATE_VERSION`)."""
    return {
        "version": _STATE_VERSION,
        "federation": federation,
        "decryptions": count,
        "rounds": rounds,
    }


def _federation(name: str | None) -> str:
    """A record's federation as a sentence says it."""
    return f"federation {name!r}" if name else "no federation"


def opened_path(state: Path) -> Path:
    """Where a key holder whose decryption record is ``state`` keeps the round its last
    key request opened: ``<state>.opened`` beside it (a separate file, so the record's
    own format and its fail-closed reading are the record's alone)."""
    return state.with_name(state.name + ".opened")


def lock_path(state: Path) -> Path:
    """The lock a key holder takes while it re-reads and writes its record ``state``:
    ``<state>.lock`` beside it (:func:`~secagg.durable.exclusive_lock`)."""
    return state.with_name(state.name + ".lock")
