"""One object, one TOML file: everything a federation is.

The CLI (``secagg server --config F``), the simulator and the tests all build
a :class:`FederationConfig` and nothing else, so a federation behaves the same
whichever door it came through. Every field is validated on construction with
an error that names the field and says what is allowed; unknown keys in a
TOML file are errors too (a typo must not silently fall back to a default), with
the likely spelling (``[dp] epsilon_budgt``: did you mean ``epsilon_budget``?).

A file looks like::

    [federation]
    name = "fraud-demo"
    rounds = 3                  # at most 10^9
    clients = ["branch-01", "branch-02", "branch-03"]
    dimension = 1000            # model parameters (or given by the model hook)
    server_learning_rate = 1.0
    server_momentum = 0.0       # FedAvgM: 0.9 smooths noisy DP updates (post-processing)
    # server_optimizer = "adam" # FedAdam (Reddi et al. 2021) instead of FedAvg(M): betas
    # server_adam_tau = 1e-3    # 0.9 / 0.99, tau its adaptivity (adam only; at least
                                # 1e-100); momentum must stay 0, and the file must give
                                # server_learning_rate (FedAdam steps by about it: ~0.03)
    # seed = 7                  # tests: seeded, predictable cohorts (not a secret; no
                                # epsilon credits the sampling, so that costs nothing)

    [sampling]
    kind = "poisson"            # or "fixed"
    rate = 0.5                  # poisson: each client joins with this probability
    # count = 8                 # fixed: exactly this many per round

    [backend]
    name = "secagg+"            # plain | secagg | secagg+ | ckks
    # active = true             # masking: the malicious-server variant (signed, certificates)
    # key_holder = "compliance" # ckks only: the party holding the secret key
    value_bound = 1.0           # clip, or per-coordinate bound without DP
    bits = 32

    [dp]                        # optional; omit for no DP
    unit = "client"
    mechanism = "central"       # or "distributed" (masking backends only)
    clip = 1.0
    noise_multiplier = 1.0
    delta = 1e-5
    # adaptive_clip = true      # central only: clip (the initial one) follows the median norm
    # min_clip = 0.001          # adaptive only: its floor and ceiling (default: clip / 10^6
    # max_clip = 1.0            # and clip x 10^6; max_clip at most backend.value_bound)
    # unit = "record" with mechanism = "distributed": DP gradient descent noised once in
    # the secure sum; record_clip = what one customer moves a client's update by (the
    # noise's sensitivity), clip = the whole update's bound (see docs/privacy.md);
    # record_unit = "customer" (default) or "transaction" when rows name no customer

    [deadlines]
    phase_seconds = 30.0        # a phase's length: who has not answered by then drops
    # training_seconds = 600.0  # the first phase, which includes local training

    [server]
    state = "server.sqlite"
    bind = "127.0.0.1:50051"     # host:port (IPv6 as [::1]:50051); port 0: the OS picks one
    certificates = "certs"
    # quorum_wait_seconds = 600  # wait this long for enough branches before a round
    # unmask_on = "ray"          # masks removed by slices on the server's own Ray cluster
    # unmask_workers = 8         # threads, or Ray workers (one coordinate slice each)

A value of the wrong type names its section and key (``[dp] noise_multiplier must be a
number, not '1.1'``) instead of surfacing as a comparison error from deep inside
validation; :func:`split_host_port` checks an address, for the server's ``bind`` and
for the address a branch dials.
"""

from __future__ import annotations

import errno
import math
import os
import sys
import tomllib
import types
import typing
import warnings
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from secagg import durable
from secagg.aggregation import BACKENDS, AggregationBackend, backend_from_settings, needs_helper
from secagg.aggregation.policy import FEDERATION_NAME_PATTERN, MAX_CLIP
from secagg.aggregation.registry import accepted_settings
from secagg.crypto.signing import SigningKey
from secagg.dp.config import DPSettings
from secagg.dp.display import shown
from secagg.dp.release import Mechanism, mechanism_for

# re-exported: the command line's checks import them from here (helper-217's names)
from secagg.durable import file_kind as file_kind
from secagg.durable import refuse_special_file as refuse_special_file
from secagg.errors import (
    LISTED_UNKNOWN_NAMES,
    ConfigurationError,
    closest_spelling,
    decimal_digits,
    listed_names,
)
from secagg.protocol.config import DEFAULT_CORRUPT_FRACTION, DEFAULT_DROPOUT_FRACTION
from secagg.transport.base import MAX_WAIT_SECONDS
from secagg.transport.framing import MAX_INCOMING_CONNECTIONS, MAX_MESSAGE_BYTES
from secagg.transport.grpc_limits import (
    DEFAULT_MESSAGE_RECEIVE_SECONDS,
    MAX_SESSION_BURST,
    MIN_SESSION_RATE,
)

#: the largest model a federation runs: round vectors are indexed by 32-bit words
MAX_DIMENSION = 2**31

#: the names a federation's config gives (the federation, its clients, its key holder):
#: the rule the wire binds a round's federation name by, defined once
NAME_PATTERN = FEDERATION_NAME_PATTERN


#: the largest server learning rate: FedAvg's is 1 and server optimisers use a few; far
#: beyond that a released mean only overflows the model (which the server then refuses)
MAX_SERVER_LEARNING_RATE = 100.0

#: ``federation.server_optimizer``'s values: "sgd" is FedAvg, or FedAvgM with
#: ``server_momentum``; "adam" is FedAdam (Reddi et al., "Adaptive Federated
#: Optimization", ICLR 2021). Either is post-processing of the released mean.
SERVER_OPTIMIZERS = ("sgd", "adam")

#: FedAdam's first and second moment decays (Reddi et al. 2021's beta_1 and beta_2, the
#: values of their experiments). Fixed, not configured: the study that asked for FedAdam
#: (benchmarks/bench_record_rounds.py's ``adam:`` variants) stepped with these, and a
#: knob nobody tuned is one more way to get a federation wrong.
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.99

#: The largest ``federation.server_adam_tau``: the largest ``backend.value_bound``, so
#: above any coordinate a released mean holds; a larger tau only divides the learning
#: rate (Reddi et al. tune it from 10^-7 to 1).
MAX_SERVER_ADAM_TAU = 1e6

#: The least ``federation.server_adam_tau``. Why: a released mean's coordinate below
#: about 1.6e-161 squares (times ``1 - ADAM_BETA2``) to zero in float64, so FedAdam's
#: step there is ``lr * g / tau``, not the ``lr``-sized step of exact arithmetic: at
#: ``tau = 1e-300`` one branch of the plain backend (float64 sums) sending ``1e-200``
#: moved the model by ``1e100`` times the learning rate, a finite model the server
#: adopted (second review, 2026-12-07). From 1e-100 up, a coordinate small enough to
#: underflow steps by at most 1e-5 of the learning rate, and any larger one squares to
#: a normal float; Reddi et al. tune tau from 10^-7, so no federation is refused a tau
#: it would tune.
MIN_SERVER_ADAM_TAU = 1e-100

#: The largest ``federation.seed``: the one range every seed of the project takes, as
#: ``secagg simulate``'s (its data, training and noise generators take 32-bit seeds).
#: Why: a negative seed loaded here (it is only hashed, in decimal) while the simulator
#: refused it, so a seed valid in one file was not in the other (upper-bounds review,
#: 2026-12-05); 0 .. 2**32 - 1 is what both now accept.
MAX_SEED = 2**32 - 1

#: The most ``federation.rounds``: the bound of ``secagg client --rounds`` and ``secagg
#: privacy -T`` (``secagg.apps.commands.common.MAX_FEDERATION_ROUNDS``, which this layer
#: cannot import; tests/runtime/test_config_upper_bounds.py holds the two equal). Why:
#: ``rounds = 2**70`` loaded (without ``[dp]`` nothing refused it; with it, only the
#: server's plan check did, as the accountant's overflow), a federation that cannot
#: exist; 10^9 rounds, one a second, run for 31 years.
MAX_ROUNDS = 10**9

#: The largest ``[server] session_burst`` is the transport's ``MAX_SESSION_BURST``
#: (imported above, defined once in secagg.transport.grpc_limits): its token buckets
#: count sessions in floats, exact to 2^53 (0 is the way to say no limit). Why a bound:
#: 10**400 loaded, and then every branch's session failed in the transport
#: (``float(burst)`` raised OverflowError at each admission), so no round ran (config
#: review, 2026-12-06).

#: The least ``[server] session_rate`` is the transport's ``MIN_SESSION_RATE`` (imported
#: above, defined once in secagg.transport.grpc_limits): one session a week, so a refused
#: branch is told to wait at most ``MAX_WAIT_SECONDS``. Why: ``session_rate = 5e-324``
#: loaded, and its first refusal said "retry in inf s" (config review, 2026-12-06). A
#: federation that wants no limit says ``session_burst = 0``.

#: the docs' port: what a bind without one would have meant (it is an error instead)
DEFAULT_PORT = 50051


#: A Poisson-sampled federation more than this share of whose draws are smaller than the
#: smallest round its backend can plan is refused at load: most of its rounds would abort.
REFUSED_ABORT_SHARE = 0.5

#: ... and one more than this share of whose draws are so is told so at load (a
#: :class:`SmallDrawWarning`): Poisson draws below the expected size are a normal event,
#: but a federation that aborts one round in twenty should know it before it starts.
WARNED_ABORT_SHARE = 0.01


class SmallDrawWarning(UserWarning):
    """A Poisson-sampled federation some of whose draws are too small for any round of
    its backend: they abort (uncharged) and the next round goes on, but they cost time.
    ``secagg server`` logs it as one WARNING line at start (the log it gives the plan's
    :class:`~secagg.dp.config.PrivacyCostWarning`)."""


def binomial_below(population: int, rate: float, size: int) -> float:
    """P(X < ``size``) for X ~ Binomial(``population``, ``rate``): the share of Poisson
    draws smaller than ``size``.

    Exact up to float rounding (no normal approximation: the draws that matter lie in
    the lower tail, where one is worst): the terms are summed downward from
    ``size - 1``, each from the one above by the ratio of binomial terms, until they
    fall below 2^-60 of the sum past the mode, so the cost is the tail's width, not the
    population's size. The first term comes from ``lgamma`` (a term below 1e-308 is 0)."""
    if size <= 0:
        return 0.0
    if size > population:
        return 1.0
    if rate >= 1.0:
        return 0.0
    log_q, log_p = math.log(rate), math.log1p(-rate)
    k = size - 1
    term = math.exp(
        math.lgamma(population + 1)
        - math.lgamma(k + 1)
        - math.lgamma(population - k + 1)
        + k * log_q
        + (population - k) * log_p
    )
    terms = [term]
    running = term  # for the stop only: the sum returned is fsum's
    odds = (1.0 - rate) / rate
    mode = math.floor((population + 1) * rate)
    while k > 0:
        # P(k - 1) / P(k) = k (1 - q) / ((n - k + 1) q)
        term *= k * odds / (population - k + 1)
        k -= 1
        terms.append(term)
        running += term
        if k <= mode and term <= running * 2.0**-60:
            break
    return min(1.0, math.fsum(terms))


def _share(probability: float) -> str:
    """A share of rounds as a percentage, rounded up (the safe side for a warning)."""
    return f"{shown(100.0 * probability, 1, significant=False)} %"


#: the smallest plannable draw of a Poisson federation's settings (see
#: :meth:`FederationConfig._smallest_plannable_draw`), cached: a config is built more
#: than once per process (validated, then rebuilt by the simulator), and the search
#: plans rounds; bounded so that a long-lived process keeps a few entries
_PLANNABLE_DRAWS: dict[tuple[Any, ...], tuple[int, str]] = {}
_PLANNABLE_DRAWS_KEPT = 64


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


def split_host_port(address: object, what: str, *, allow_any_port: bool = False) -> tuple[str, int]:
    """``"host:port"`` (an IPv6 host in brackets, ``"[::1]:50051"``) as ``(host, port)``.

    Why it exists: gRPC takes a bind string as it is, so ``127.0.0.1:99999`` listened on
    port 34463 (the number wraps modulo 65536) and ``127.0.0.1`` on port 443. Here a
    missing port, a port that is not a number and one outside 1-65535 are errors that
    name ``what`` (the config key or CLI flag the address came from). ``allow_any_port``
    admits port 0, "any free port, chosen by the OS" (tests, benchmarks)."""
    example = f"e.g. 127.0.0.1:{DEFAULT_PORT}"
    _require(isinstance(address, str), f"{what} must be a string host:port ({example})")
    assert isinstance(address, str)
    text = address.strip()
    if text.startswith("["):  # [IPv6]:port
        host, bracket, rest = text[1:].partition("]")
        _require(bool(bracket) and bool(host), f"{what} {address!r}: unclosed '[' in the host")
        _require(
            rest.startswith(":") and len(rest) > 1,
            f"{what} {address!r} has no port: write [host]:port, e.g. [::1]:{DEFAULT_PORT}",
        )
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        _require(
            bool(colon) and bool(port_text),
            f"{what} {address!r} has no port: write host:port ({example})",
        )
        _require(
            ":" not in host,
            f"{what} {address!r}: put an IPv6 host in brackets, e.g. [::1]:{DEFAULT_PORT}",
        )
    _require(bool(host), f"{what} {address!r} has no host: write host:port ({example})")
    _require(
        port_text.isascii() and port_text.isdigit(),
        f"{what} {address!r}: the port {port_text!r} is not a number",
    )
    port = int(port_text)
    any_port = " (or 0: any free port)" if allow_any_port else ""
    _require(
        1 <= port <= 65535 or (allow_any_port and port == 0),
        f"{what} {address!r}: port {port} is outside 1-65535{any_port}",
    )
    return host, port


def _type_needed(value: Any, hint: Any) -> str | None:
    """What a value of the wrong type should have been ("a number", ...), or None if it
    fits ``hint``. Only the simple types a TOML value can take are checked; a nested
    table or a union of several types is left to the dataclass itself."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or len(options) != 1:
            return None
        return _type_needed(value, options[0])
    is_bool = isinstance(value, bool)
    if hint is bool:
        return None if is_bool else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not is_bool else "an integer"
    if hint is float:
        if not isinstance(value, int | float) or is_bool:
            return "a number"
        # TOML integers are unbounded in tomllib: one past the float range (10**400)
        # passed here and failed as an OverflowError traceback in the range check
        return None if _fits_float(value) else f"a number {FLOAT_RANGE}"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin is tuple and typing.get_args(hint)[:1] == (int,):
        fits = isinstance(value, list | tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
        return None if fits else "a list of integers"
    if origin is tuple and typing.get_args(hint)[:1] == (str,):
        fits = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        return None if fits else "a list of strings"
    return None


#: the words every refusal of a number past the floats gives (a range check compares
#: floats: Python turns an int into one before comparing with a float, or fails)
FLOAT_RANGE = "within the floating-point range (at most about 1.8e308 in magnitude)"


def _fits_float(value: int | float) -> bool:
    """Whether ``value`` converts to a float: every float does, an int up to about 1.8e308."""
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _shown_value(value: Any) -> str:
    """``value`` for a one-line refusal: its repr, or an integer's length when that
    runs past 40 digits (a 10**400 typo is not worth 400 digits of the line)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if (digits := decimal_digits(value)) > 40:
            return f"an integer of {digits} digits"
    return repr(value)


def check_types(kind: type, values: dict[str, Any], section: str) -> None:
    """Refuse a value whose type is not its field's, naming ``[section] key``.

    Why: without this, ``noise_multiplier = "1.1"`` failed deep inside validation as
    "'>=' not supported between instances of 'str' and 'int'", naming no key."""
    hints = typing.get_type_hints(kind)
    for key, value in values.items():
        if key in hints:
            needed = _type_needed(value, hints[key])
            if needed is not None:
                raise ConfigurationError(
                    f"[{section}] {key} must be {needed}, not {_shown_value(value)}"
                )


@dataclass(frozen=True)
class SamplingConfig:
    """Which clients take part in a round: Poisson (the DP analysis's assumption) or fixed."""

    kind: str = "poisson"
    rate: float = 1.0
    count: int | None = None

    def __post_init__(self) -> None:
        _require(self.kind in ("poisson", "fixed"), "sampling.kind must be 'poisson' or 'fixed'")
        # checked with kind = 'fixed' too, which reads no rate: ``rate = nan`` (or 2**70)
        # beside a fixed count loaded as a config holding it (config fuzz, 2026-12-05)
        _require(
            math.isfinite(self.rate) and 0 < self.rate <= 1,
            f"sampling.rate must lie in (0, 1], not {self.rate!r}",
        )
        if self.kind == "poisson":
            # a count beside Poisson sampling was silently ignored (CLI audit, 2026-12-04)
            _require(
                self.count is None,
                "sampling.count is for sampling.kind = 'fixed'; with kind = 'poisson' (the "
                "default) each client joins with probability sampling.rate: remove count or "
                "set sampling.kind = 'fixed'",
            )
        else:
            _require(
                isinstance(self.count, int) and self.count >= 2,
                "sampling.count must be an integer >= 2 with kind = 'fixed'",
            )


@dataclass(frozen=True)
class BackendConfig:
    """The aggregation backend and its options (see docs/backends.md)."""

    name: str = "secagg+"
    value_bound: float = 1.0
    bits: int = 32
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION
    key_holder: str | None = None  # ckks: the party that holds the secret key
    precision: float | None = None  # ckks: absolute error of the sum (default 1e-6 * bound)
    # masking: the malicious-server variant (signed keys and survivor sets; every
    # branch's identity is its certificate)
    active: bool = False

    def __post_init__(self) -> None:
        _require(self.name in BACKENDS, f"backend.name must be one of {BACKENDS}")
        _require(
            not self.active or "active" in accepted_settings(self.name),
            f"backend.active: backend {self.name!r} has no active (malicious-server) variant",
        )
        # both keys named, with their values: a dropped backend.name (secagg+ by default)
        # beside a key_holder was reported naming key_holder alone (config fuzz)
        _require(
            self.key_holder is None or needs_helper(self.name),
            f"backend.key_holder = {self.key_holder!r} names the key holder of a backend "
            f"that needs one (ckks); backend.name = {self.name!r} has none: drop key_holder, "
            "or set backend.name to such a backend",
        )
        _require(
            self.key_holder is not None or not needs_helper(self.name),
            f"backend.name = {self.name!r} needs backend.key_holder: the party that holds "
            "its secret key (not one of the clients)",
        )
        # a setting the chosen backend does not take was dropped in silence: precision =
        # 1e-9 beside secagg+ (whose error is its ring's) or bits = 64 beside ckks ran as
        # if absent (config review, 2026-12-06); bits = 32 is the default, a no-op either way
        for key, changed, takers in (
            ("precision", self.precision is not None, "the ckks backend"),
            ("bits", self.bits != 32, "the masking backends (secagg, secagg+)"),
        ):
            _require(
                not changed or key in accepted_settings(self.name),
                f"backend.{key} = {getattr(self, key)!r} applies to {takers} only, and "
                f"backend.name = {self.name!r} has no such setting: remove {key}, or set "
                "backend.name to a backend that takes it",
            )
        # at most MAX_CLIP: 1e300 loaded, and the masking ring's step (three clients: 2.5e291)
        # rounded every update to 0, an untrained model (upper-bounds review, 2026-12-06)
        _require(
            math.isfinite(self.value_bound) and 0 < self.value_bound <= MAX_CLIP,
            f"backend.value_bound must be a positive number, at most {MAX_CLIP:g} (the largest "
            f"bound on an update any round takes), not {self.value_bound!r}",
        )
        _require(self.bits in (32, 64), "backend.bits must be 32 or 64")
        _require(0 <= self.dropout_fraction < 1, "backend.dropout_fraction must lie in [0, 1)")
        _require(0 <= self.corrupt_fraction < 1, "backend.corrupt_fraction must lie in [0, 1)")
        _require(
            self.precision is None or (math.isfinite(self.precision) and self.precision > 0),
            f"backend.precision must be a positive number (the sum's absolute error), not "
            f"{self.precision!r}",
        )
        # at most the bound: precision = 1e6 (a typo of 1e-6) at value_bound = 1 loaded,
        # and the key holder's noise floor, which is the error bound the precision
        # buys, was 17 000 per coordinate of a sum of 10 values of at most 1: every
        # release was noise (config review, 2026-12-06)
        _require(
            self.precision is None or self.precision <= self.value_bound,
            f"backend.precision = {self.precision!r} is above backend.value_bound = "
            f"{self.value_bound!r}: the sum's error could exceed a whole update's bound, and "
            "the key holder adds noise of that size to every sum it decrypts (the default, "
            "left out, is 1e-6 of the bound)",
        )

    def settings(self) -> dict[str, Any]:
        """The options every backend picks its own from (see backend_from_settings)."""
        return {
            "value_bound": self.value_bound,
            "bits": self.bits,
            "dropout_fraction": self.dropout_fraction,
            "corrupt_fraction": self.corrupt_fraction,
            "precision": self.precision,
            "active": self.active or None,
        }


@dataclass(frozen=True)
class DeadlineConfig:
    """How long the server waits in each phase before silence counts as dropout."""

    phase_seconds: float = 30.0
    round_seconds: float = 600.0
    # the first phase includes the clients' local training; None: phase_seconds
    training_seconds: float | None = None

    @property
    def first_phase_seconds(self) -> float:
        """The deadline of the phase that includes the clients' local training."""
        return self.phase_seconds if self.training_seconds is None else self.training_seconds

    def __post_init__(self) -> None:
        # finite: an inf deadline never closes a phase, so one silent branch holds the
        # round (and the federation) forever; nan compared false and slipped through
        # at most a week (MAX_WAIT_SECONDS): 1e300 reached threading's waits and Ray's
        for key, value in (
            ("phase_seconds", self.phase_seconds),
            ("round_seconds", self.round_seconds),
            ("training_seconds", self.training_seconds),
        ):
            _require(
                value is None or (math.isfinite(value) and 0 < value <= MAX_WAIT_SECONDS),
                f"deadlines.{key} must be a positive number of seconds, at most "
                f"{MAX_WAIT_SECONDS} (one week), not {value!r}",
            )
        _require(
            self.round_seconds >= self.first_phase_seconds,
            f"deadlines.round_seconds ({self.round_seconds:g}) is shorter than "
            + (
                f"deadlines.training_seconds ({self.training_seconds:g}): the round would end "
                "before a slow branch's training deadline"
                if self.training_seconds is not None
                else f"deadlines.phase_seconds ({self.phase_seconds:g}), the deadline of one phase"
            ),
        )
        _require(  # named both: a huge phase_seconds was reported as "round_seconds too short"
            self.round_seconds >= self.phase_seconds,
            f"deadlines.round_seconds ({self.round_seconds:g}) is shorter than "
            f"deadlines.phase_seconds ({self.phase_seconds:g}), the deadline of one phase",
        )


@dataclass(frozen=True)
class ServerSettings:
    """Where the server keeps its state and listens."""

    state: str = "secagg-server.sqlite"
    bind: str = "127.0.0.1:50051"
    certificates: str = "certs"
    max_message_bytes: int = 256 * 1024 * 1024
    # a branch named by this many distinct others as the sender of shares that did not
    # open is left out of later rounds (one branch alone can neither veto rounds nor
    # exclude an honest branch)
    exclude_after_accusers: int = 2
    # a branch that was sampled and did not answer in this many rounds in a row sits out
    # the next round, and one more for each further miss: with a threshold as large as
    # a small cohort, one silent branch would otherwise abort every round and stop the
    # federation (0: never; the simulator's dropouts are independent per round)
    bench_after_missed_rounds: int = 2
    # before each round the server waits up to this long (with back-off) for enough
    # branches to be connected, burning no round number, then stops with a non-zero exit
    # (long enough to ride out the branches' restart; reliability review D2)
    quorum_wait_seconds: float = 600.0
    # how the masks come off at a masking round's close (a local choice, the same sum
    # either way): "threads" in this process, or "ray": one coordinate slice per worker
    # of a Ray cluster that must be the server's own machines (it receives the round's
    # unmasking seeds); unmask_workers: threads or Ray workers (default: up to 4 usable
    # cores / every CPU of the cluster); ray_address: None starts a local instance,
    # "auto" or "ray://host:10001" joins a running cluster
    unmask_on: str = "threads"
    unmask_workers: int | None = None
    ray_address: str | None = None
    # new sessions per identity (client certificate): a token bucket of session_burst
    # sessions refilled at session_rate a second; one branch that opens and closes
    # sessions in a loop is refused (cheaply) past it, the others are not affected
    # (session_burst = 0: no limit)
    session_burst: int = 10
    session_rate: float = 1.0
    # connections, which hold a file descriptor before any certificate is seen: one whose
    # TLS handshake is not done in handshake_timeout seconds is closed, one with no
    # session for idle_connection_timeout seconds too, and at most max_connections are
    # open at once (None: half the process's descriptors, at most 4096, at least two per
    # party + 16; below that is refused: after a network cut a branch's new connection
    # arrives while its half-open old one still counts)
    handshake_timeout: float = 10.0
    idle_connection_timeout: float = 60.0
    max_connections: int | None = None
    # a message (its chunks) must be whole within this many seconds of its first chunk,
    # else the sender's session ends: a branch sending a chunk every few minutes held a
    # partial message open for as long as it kept the connection (the transport's
    # message_receive_timeout; ``secagg keyholder --config`` keeps the same bound on what
    # the server sends it). An hour lets 256 MiB come at 75 KB/s.
    message_receive_timeout: float = DEFAULT_MESSAGE_RECEIVE_SECONDS

    def __post_init__(self) -> None:
        split_host_port(self.bind, "[server] bind", allow_any_port=True)
        # a blank path was the folder the server ran in: ``state = ""`` became a database
        # at ".", a ledger at ".ledger" and a lock at ".lock" (config fuzz, 2026-12-05)
        for key, what in (
            ("state", "the server's state file"),
            ("certificates", "the server's certificate folder"),
            ("ray_address", "a Ray cluster (or is left out: a local instance)"),
        ):
            value = getattr(self, key)
            _require(
                value is None or value.strip() != "",
                f"[server] {key} is empty: it must name {what}",
            )
        _require(
            self.unmask_on in ("threads", "ray"),
            f"[server] unmask_on must be 'threads' or 'ray', not {self.unmask_on!r}",
        )
        _require(
            self.unmask_workers is None or self.unmask_workers >= 1,
            "[server] unmask_workers must be a positive integer",
        )
        _require(
            self.ray_address is None or self.unmask_on == "ray",
            "[server] ray_address is only used with unmask_on = 'ray'",
        )
        _require(
            math.isfinite(self.quorum_wait_seconds)
            and 0 < self.quorum_wait_seconds <= MAX_WAIT_SECONDS,
            f"[server] quorum_wait_seconds must be a positive number of seconds, at most "
            f"{MAX_WAIT_SECONDS} (one week), not {self.quorum_wait_seconds!r}",
        )
        _require(
            0 <= self.session_burst <= MAX_SESSION_BURST,
            f"[server] session_burst must be an integer in [0, 2**53] (0: no limit), not "
            f"{_shown_value(self.session_burst)}",
        )
        _require(
            # a bool is an int to Python: ServerSettings(session_rate=True) built directly
            # (not from a file, whose reader refuses it) passed as a rate of 1 a second
            not isinstance(self.session_rate, bool)
            and math.isfinite(self.session_rate)
            and self.session_rate >= MIN_SESSION_RATE,
            f"[server] session_rate must be a finite number of sessions a second, at least "
            f"{MIN_SESSION_RATE:.3g} (one a week: a refused branch is told to wait up to "
            f"1 / session_rate seconds, and no deadline is longer than a week), not "
            f"{self.session_rate!r}",
        )
        for key in ("handshake_timeout", "idle_connection_timeout"):
            seconds = getattr(self, key)
            _require(  # at most a day: gRPC takes milliseconds in a 32-bit integer
                math.isfinite(seconds) and 0 < seconds <= 86400,
                f"[server] {key} must be a positive number of seconds, at most 86400, "
                f"not {seconds!r}",
            )
        _require(  # at most a week, as every other wait a federation configures
            math.isfinite(self.message_receive_timeout)
            and 0 < self.message_receive_timeout <= MAX_WAIT_SECONDS,
            f"[server] message_receive_timeout must be a positive number of seconds, at "
            f"most {MAX_WAIT_SECONDS} (one week), not {self.message_receive_timeout!r}",
        )
        _require(
            self.max_connections is None or 1 <= self.max_connections <= MAX_INCOMING_CONNECTIONS,
            f"[server] max_connections must be a positive integer, at most "
            f"{MAX_INCOMING_CONNECTIONS} (gRPC's limit; or left out: the default), not "
            f"{self.max_connections!r}",
        )
        _require(self.max_message_bytes >= 1024, "server.max_message_bytes is too small")
        _require(  # the frame header counts a message's chunks in 32 bits
            self.max_message_bytes <= MAX_MESSAGE_BYTES,
            f"[server] max_message_bytes must be at most {MAX_MESSAGE_BYTES} (the largest "
            f"message the transport can carry: 2^32 - 1 chunks of 1 MiB), not "
            f"{self.max_message_bytes}",
        )
        _require(self.exclude_after_accusers >= 2, "server.exclude_after_accusers must be >= 2")
        _require(
            self.bench_after_missed_rounds >= 0,
            "server.bench_after_missed_rounds must be >= 0 (0: never leave a branch out)",
        )


#: connections above two per party that ``[server] max_connections`` must leave room
#: for (the transport's default keeps the same margin): a key holder's, a monitoring
#: probe's, a redial that races its own old connection
CONNECTION_MARGIN = 16


def min_connections(parties: int) -> int:
    """The least ``[server] max_connections`` a federation of ``parties`` may set: two
    per party (after a network cut a branch's new connection arrives while its
    half-open old one still counts, until keepalive notices) plus
    :data:`CONNECTION_MARGIN`."""
    return 2 * parties + CONNECTION_MARGIN


@dataclass(frozen=True)
class FederationConfig:
    """A whole federation: clients, rounds, sampling, backend, DP, deadlines, server."""

    name: str
    clients: tuple[str, ...]
    dimension: int
    rounds: int = 1
    server_learning_rate: float = 1.0
    server_momentum: float = 0.0
    # the server's step (SERVER_OPTIMIZERS): "sgd" (FedAvg / FedAvgM) or "adam" (FedAdam,
    # betas ADAM_BETA1 / ADAM_BETA2, server_adam_tau its adaptivity); the server's own
    # business, post-processing of the released mean: no branch checks it
    server_optimizer: str = "sgd"
    server_adam_tau: float = 1e-3
    # seeds client sampling (tests, simulations); never a secret: DP noise, masks and keys
    # always come from the OS CSPRNG unless replay_noise is set (simulations only, ledgered;
    # it also draws SecAgg+'s neighbour graph from the seed, so a replay sends the same bytes).
    # A seeded cohort is predictable from this file; no epsilon credits the sampling (each
    # client is charged for its own rounds), and every DP ledger row says whether it was
    seed: int | None = None
    replay_noise: bool = False
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    dp: DPSettings | None = None
    deadlines: DeadlineConfig = field(default_factory=DeadlineConfig)
    server: ServerSettings = field(default_factory=ServerSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "clients", tuple(self.clients))
        _require(bool(NAME_PATTERN.fullmatch(self.name)), f"federation.name {self.name!r} invalid")
        _require(len(self.clients) >= 2, "federation.clients must name at least 2 clients")
        _require(len(set(self.clients)) == len(self.clients), "federation.clients repeats a name")
        for client in self.clients:
            _require(
                bool(NAME_PATTERN.fullmatch(client)),
                f"client name {client!r} invalid: letters, digits, '.', '_' or '-', max 64",
            )
        if self.dp is not None:
            # at most MAX_CLIP, as simulate's clip: 1e300 loaded, with a central noise of
            # z x 1e300 per coordinate (upper-bounds review, 2026-12-06); record_clip lies below
            _require(
                self.dp.clip <= MAX_CLIP,
                f"dp.clip must be at most {MAX_CLIP:g} (the largest clip any round takes, as "
                f"secagg simulate's), not {self.dp.clip!r}",
            )
            missing = set(self.dp.round_options) - set(self.aggregation_backend().round_options)
            _require(
                not missing,
                f"dp.mechanism = {self.dp.mechanism!r} needs a backend that carries "
                f"{sorted(missing)} inside a round (a masking backend: the clients' noise "
                f"shares must only ever be seen summed); backend.name = {self.backend.name!r} "
                "does not",
            )
        if self.backend.key_holder is not None:
            _require(
                bool(NAME_PATTERN.fullmatch(self.backend.key_holder))
                and self.backend.key_holder not in self.clients,
                "backend.key_holder must be a valid name that is not one of the clients",
            )
        _require(
            self.seed is None or 0 <= self.seed <= MAX_SEED,
            f"federation.seed must be an integer in [0, {MAX_SEED}] (as secagg simulate's "
            f"seed), not {self.seed}",
        )
        _require(
            not self.replay_noise or self.seed is not None,
            "federation.replay_noise replays the DP noise from federation.seed: set a seed",
        )
        _require(self.dimension >= 1, "federation.dimension must be at least 1")
        _require(
            self.dimension <= MAX_DIMENSION,
            f"federation.dimension {self.dimension} is above {MAX_DIMENSION} (2^31): a model "
            "that size does not fit a round's vectors",
        )
        _require(self.rounds >= 1, "federation.rounds must be at least 1")
        _require(
            self.rounds <= MAX_ROUNDS,
            f"federation.rounds must be at most {MAX_ROUNDS} (10^9 rounds, one a second, run "
            f"for 31 years; secagg client --rounds takes as many), not "
            f"{_shown_value(self.rounds)}",
        )
        # finite: an inf learning rate checkpointed a model of infinities at round 1, which
        # every branch refused, so no later round (nor a restart) could complete
        _require(
            math.isfinite(self.server_learning_rate)
            and 0 < self.server_learning_rate <= MAX_SERVER_LEARNING_RATE,
            f"federation.server_learning_rate must be a number in (0, "
            f"{MAX_SERVER_LEARNING_RATE:g}], not {self.server_learning_rate!r}",
        )
        _require(
            math.isfinite(self.server_momentum) and 0 <= self.server_momentum < 1,
            f"federation.server_momentum must lie in [0, 1), not {self.server_momentum!r}",
        )
        named = _shown_value(self.server_optimizer)  # a pasted blob is not echoed whole
        _require(
            self.server_optimizer in SERVER_OPTIMIZERS,
            f"federation.server_optimizer must be one of {', '.join(map(repr, SERVER_OPTIMIZERS))}"
            f", not {named if len(named) <= 60 else named[:57] + '...'}",
        )
        _require(
            math.isfinite(self.server_adam_tau)
            and MIN_SERVER_ADAM_TAU <= self.server_adam_tau <= MAX_SERVER_ADAM_TAU,
            f"federation.server_adam_tau must be a number in [{MIN_SERVER_ADAM_TAU:g}, "
            f"{MAX_SERVER_ADAM_TAU:g}], not {self.server_adam_tau!r}",
        )
        # FedAdam keeps its own first moment (ADAM_BETA1): a momentum beside it would be
        # a key that changes nothing
        _require(
            self.server_optimizer != "adam" or self.server_momentum == 0,
            f"federation.server_momentum = {self.server_momentum!r} with "
            "federation.server_optimizer = 'adam': FedAdam has its own momentum (beta1 = "
            f"{ADAM_BETA1}); set server_momentum = 0 or server_optimizer = 'sgd'",
        )
        if self.sampling.kind == "fixed":
            _require(
                (self.sampling.count or 0) <= len(self.clients),
                "sampling.count exceeds the number of clients",
            )
        if self.dp is not None and self.dp.unit == "client":
            # any cohort, fixed-size or Poisson, seeded or not: no mechanism credits the
            # sampling (each client is charged for the rounds it was in)
            _require(
                self.dp.delta < 1 / len(self.clients),
                f"dp.delta {self.dp.delta:g} is not below 1/{len(self.clients)} clients: the "
                "guarantee would allow releasing one client's update outright",
            )
        if self.dp is not None and self.dp.adaptive_clip:
            _require(
                not needs_helper(self.backend.name),
                f"dp.adaptive_clip: with backend.name = {self.backend.name!r} the key holder "
                "noises the sum as one vector, but the clip count needs its own noise; use a "
                "masking or the plain backend",
            )
        if self.dp is not None and self.dp.bounds_updates:
            _require(
                self.backend.value_bound >= self.dp.clip,
                "backend.value_bound must be at least dp.clip (clipped updates must fit)",
            )
        if self.dp is not None and self.dp.max_clip is not None:
            # the clip never grows past the ring's bound (CentralRelease's clip_cap): a
            # ceiling above it would be a key that changes nothing
            _require(
                self.dp.max_clip <= self.backend.value_bound,
                f"dp.max_clip = {self.dp.max_clip:g} is above backend.value_bound = "
                f"{self.backend.value_bound:g}, which already caps the adaptive clip: lower "
                "dp.max_clip, or raise backend.value_bound",
            )
        least = min_connections(len(self.parties))
        _require(
            self.server.max_connections is None or self.server.max_connections >= least,
            f"[server] max_connections = {self.server.max_connections} is below two per "
            f"party plus {CONNECTION_MARGIN} ({least} for {len(self.parties)} parties): after a "
            "network cut a branch's new connection arrives while its old one still counts, "
            "so the last branches would be refused; raise it or leave it out",
        )
        self._refuse_a_round_that_cannot_run()

    def _refuse_a_round_that_cannot_run(self) -> None:
        """Plan one round of every client, as the server does before each round, and
        build its server session: settings no round can run with are refused here.

        Why: ``dropout_fraction = 0.9`` with ``corrupt_fraction = 0.5`` passed validation,
        and the server bound its port, aborted every round ("semi-honest SecAgg+ needs
        corrupt_fraction + dropout_fraction <= 0.9"), wrote a ledger row for each and
        told the operator to run it again; a CKKS ``precision`` no ring satisfies started
        the same way (CLI audit, 2026-12-04). The backend and the mechanism decide what
        they can plan, so the check stays free of their names. Active rounds are planned
        with a stand-in identity key for every client (the real ones are certificates)."""
        population = len(self.clients)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the plan's cost warnings: the server gives them
                mechanism = self.mechanism()
                options = mechanism.round_options(population)
        except ConfigurationError as exc:
            # the mechanism's own words name no key ("32 bits leave a scale of 4.68e-13",
            # "adaptive clipping: noise_multiplier ... must be below 2 * count_stddev"):
            # the [dp] values it was built from come first (config fuzz, 2026-12-05)
            raise ConfigurationError(f"{self._dp_given()}: {' '.join(str(exc).split())}") from None
        backend = self.aggregation_backend()
        if backend.needs_identities:
            stand_in = SigningKey.generate().verify_key.raw
            options["identities"] = (stand_in,) * population
        # a sampled round too: a backend sizes one drawn from the population for the
        # population's colluders (masking: all of them may be in it), and a round too
        # small for them is refused here, not at every round of the run
        sampled = self._sampled_round_size()
        for size in (population, *([sampled] if sampled < population else [])):
            round_options = dict(options)
            if size != population:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        round_options = mechanism.round_options(size)
                except ConfigurationError:
                    break  # the mechanism's own refusal of such a round: the run's to report
                if "identities" in options:
                    round_options["identities"] = options["identities"][:size]
            try:
                spec = backend.plan(
                    size, mechanism.round_dimension(self.dimension), **round_options
                )
                if size == population:  # a sampled round's plan says what it refuses
                    backend.server(spec, noise_stddev=mechanism.backend_noise_stddev)
            except ConfigurationError as exc:
                given = self.backend.settings()
                values = ", ".join(
                    f"{key} = {given[key]!r}"
                    for key in accepted_settings(self.backend.name)
                    if given.get(key) is not None
                )
                # a sampled round names the [sampling] key that sized it: "(sampling)"
                # named none, and a mistaken rate read as a [backend] mistake (config
                # fuzz, 2026-12-07: rate = 0.5 of 3 clients under active SecAgg+)
                drawn_by = (
                    f"count = {self.sampling.count!r}"
                    if self.sampling.kind == "fixed"
                    else f"rate = {self.sampling.rate!r}"
                )
                which = (
                    f"the {population} clients"
                    if size == population
                    else f"{size} clients drawn from the {population} ([sampling] "
                    f"kind = {self.sampling.kind!r}, {drawn_by})"
                )
                raise ConfigurationError(
                    f"[backend] name = {self.backend.name!r}, {values}: no round of {which} "
                    f"can run with these settings: {' '.join(str(exc).split())}"
                ) from None
        self._warn_of_draws_too_small(mechanism, backend, options, sampled)

    def _warn_of_draws_too_small(
        self,
        mechanism: Mechanism,
        backend: AggregationBackend,
        options: dict[str, Any],
        expected: int,
    ) -> None:
        """Refuse a Poisson federation most of whose draws no round can run with, and
        warn (:class:`SmallDrawWarning`) of one more than 1 % of whose draws are so.

        Why: a sampled round is sized for the colluders of the whole federation and
        a draw too small for them is aborted at planning, but the check above plans
        only the expected draw: 100 clients, ``corrupt_fraction = 0.05`` and
        ``rate = 0.07`` loaded (7 expected, and 7 plans), while 44 % of the rounds
        drew fewer than 7 and aborted (review, 2026-12-07). The share is the exact
        Binomial(clients, rate) probability of a draw below the smallest plannable
        round (:func:`binomial_below`)."""
        if self.sampling.kind != "poisson" or self.sampling.rate >= 1.0:
            return  # a fixed count is planned above; rate 1 draws every client
        population = len(self.clients)
        smallest, reason = self._smallest_plannable_draw(mechanism, backend, options, expected)
        # to 12 places: the sum's float error (1e-16) must not decide a share that is
        # exactly a threshold (3 clients at rate 0.5 draw fewer than 2 in exactly half
        # the rounds: warned, as docs/deployment.md says, not refused)
        share = round(binomial_below(population, self.sampling.rate, smallest), 12)
        if share <= WARNED_ABORT_SHARE:
            return
        below_two = round(binomial_below(population, self.sampling.rate, 2), 12)
        what = (
            f"[sampling] rate = {self.sampling.rate!r} over {population} clients draws "
            f"rounds of {self.sampling.rate * population:g} clients on average, but no round "
            f"smaller than {smallest} can run ({reason}): {_share(share)} of the draws "
            f"are smaller (below 2: {_share(below_two)}) and abort"
        )
        if share > REFUSED_ABORT_SHARE:
            raise ConfigurationError(
                f"{what}: more than {REFUSED_ABORT_SHARE:.0%} of the rounds would abort; "
                "raise [sampling] rate (or lower backend.corrupt_fraction)"
            )
        warnings.warn(
            f"{what}; such rounds are not charged and the next round goes on",
            SmallDrawWarning,
            stacklevel=4,
        )

    def _smallest_plannable_draw(
        self,
        mechanism: Mechanism,
        backend: AggregationBackend,
        options: dict[str, Any],
        expected: int,
    ) -> tuple[int, str]:
        """The smallest round size the backend plans for this population, and why the
        size below it does not (its plan's refusal in one line), found with the
        server's own calls (the mechanism's round options, then the backend's plan).

        The search assumes what the plans hold: a round that plans at one size plans
        at every larger one (the same colluders among more clients). It first plans
        the largest size at most 1 % of the draws fall below; if that plans, nothing
        smaller can move the verdict and the search stops there. Otherwise it bisects
        between it (refused) and ``expected`` (planned by the caller): about
        ``2 + log2(expected)`` plans, whatever the population (cached)."""
        population = len(self.clients)
        rate = self.sampling.rate
        key = (self.backend, self.dp, rate, population, self.dimension)
        cached = _PLANNABLE_DRAWS.get(key)
        if cached is not None:
            return cached
        fewer_than_two = "fewer than 2 clients make no round"

        def refusal(size: int) -> str | None:
            if size < 2:
                return fewer_than_two
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    round_options = mechanism.round_options(size)
                if "identities" in options:
                    round_options["identities"] = options["identities"][:size]
                backend.plan(size, mechanism.round_dimension(self.dimension), **round_options)
            except ConfigurationError as exc:
                return " ".join(str(exc).split())
            return None

        # the largest size with at most 1 % of the draws below it (2 if there is none)
        low, high = 2, expected
        while low < high:
            middle = (low + high + 1) // 2
            if binomial_below(population, rate, middle) <= WARNED_ABORT_SHARE:
                low = middle
            else:
                high = middle - 1
        floor = low
        result: tuple[int, str]
        if refusal(floor) is None:
            # planned: at most 1 % of the draws are below it; a size of 2 plans every
            # round a draw can make
            result = (floor, fewer_than_two if floor == 2 else "")
        else:
            # the caller planned the population, and the expected draw unless the
            # mechanism refused it (left to the run): bisect below a planned size
            planned = expected if refusal(expected) is None else population
            refused = floor  # refusal(refused), not refusal(planned)
            while planned - refused > 1:
                middle = (refused + planned) // 2
                if refusal(middle) is None:
                    planned = middle
                else:
                    refused = middle
            result = (planned, refusal(refused) or fewer_than_two)
        if len(_PLANNABLE_DRAWS) >= _PLANNABLE_DRAWS_KEPT:
            _PLANNABLE_DRAWS.clear()
        _PLANNABLE_DRAWS[key] = result
        return result

    def _sampled_round_size(self) -> int:
        """The round the server draws: ``sampling.count`` (fixed), or the expected
        ``ceil(rate * clients)`` (Poisson), at least 2."""
        if self.sampling.kind == "fixed":
            return max(2, self.sampling.count or 2)
        return max(2, math.ceil(self.sampling.rate * len(self.clients) - 1e-9))

    def _dp_given(self) -> str:
        """``[dp] unit = 'client', mechanism = 'central', noise_multiplier = 2.0, ...``:
        the section's keys a mechanism is built from (its unit, mechanism, clip and
        noise, and any other key set to other than its default), or ``[dp] (none)``."""
        if self.dp is None:
            return f"[dp] (none), [backend] name = {self.backend.name!r}"
        always = ("unit", "mechanism", "clip", "noise_multiplier")
        values = [
            f"{f.name} = {getattr(self.dp, f.name)!r}"
            for f in fields(self.dp)
            if f.name in always or getattr(self.dp, f.name) != f.default
        ]
        return f"[dp] {', '.join(values)}"

    @property
    def sample_rate(self) -> float:
        """Each client's chance to be drawn, q (fixed sampling: count / clients): what a
        plan sizes the most sampled client's rounds by; no claim credits it."""
        if self.sampling.kind == "poisson":
            return self.sampling.rate
        return (self.sampling.count or 0) / len(self.clients)

    @property
    def expected_clients(self) -> float:
        return self.sample_rate * len(self.clients)

    @property
    def largest_round(self) -> int:
        """The most clients one round can hold: every client, but no more than
        ``sampling.count`` with fixed sampling (its draw takes that many at most).

        Why: the budget's best case of one more round (the server's check before each
        draw, and :meth:`refuse_budget_below_one_round`) was a round of every client,
        which a fixed-count run never draws (tests/runtime/test_budget_fixed_count.py)."""
        if self.sampling.kind == "fixed" and self.sampling.count is not None:
            return min(len(self.clients), self.sampling.count)
        return len(self.clients)

    @property
    def parties(self) -> tuple[str, ...]:
        """Everyone who connects: the clients and the backend's helper, if any."""
        return (*self.clients, *filter(None, [self.backend.key_holder]))

    def aggregation_backend(self) -> AggregationBackend:
        """The configured backend; its parameters are sized for the whole federation."""
        return backend_from_settings(
            self.backend.name, max_clients=len(self.clients), **self.backend.settings()
        )

    def plan_privacy(self) -> None:
        """Warn (:class:`~secagg.dp.config.PrivacyCostWarning`) with the plan's cost.

        Client-level DP with few clients is expensive; the server calls this before
        any data moves. It runs the accountant, so it is not part of validation.

        A plan the accountant cannot compute is a :class:`ConfigurationError` naming
        the keys it came from: ``rounds = 2**70`` was an OverflowError traceback from
        ``secagg server`` (config fuzz, 2026-12-05), and a server that cannot account
        its plan could not account its rounds either. (``noise_multiplier = 1e-300``,
        once a ValueError from the accountant's solver, now plans an infinite epsilon.)"""
        if self.dp is None:
            return
        try:
            self.dp.plan(
                num_clients=len(self.clients),
                sample_rate=self.sample_rate,
                rounds=self.rounds,
                dimension=self.dimension,
                bits=self.backend.bits,
                corrupt_fraction=self.backend.corrupt_fraction,
                # the plan states the epsilon of a run that loses these too
                dropout_fraction=self.backend.dropout_fraction,
                # a fixed-size cohort is planned at its size alone; Poisson draws also
                # cover cohorts drawn smaller than expected
                sampling=self.sampling.kind,
            )
        except ConfigurationError:
            raise
        # OverflowError or ZeroDivisionError out of floats, or a ValueError out of a
        # solver: named as the plan's keys, not a traceback
        except (ArithmeticError, ValueError) as exc:
            raise ConfigurationError(
                f"federation.rounds = {self.rounds}, {self._dp_given()}: the accountant "
                f"cannot compute this plan's epsilon ({' '.join(str(exc).split())}): "
                "lower federation.rounds or raise dp.noise_multiplier"
            ) from None

    def refuse_budget_below_one_round(self) -> None:
        """Refuse a ``dp.epsilon_budget`` that not even one round fits.

        Why: such a server started, created its state, then stopped at once ("did not
        finish ... run the server again to continue"), and every later start stopped the
        same way (CLI audit, 2026-12-03). The check is the server's own before its first
        round (the best case of one more round: every client present and honest), so
        what it refuses is exactly what the server would stop before: a round of
        :attr:`largest_round` clients (of every client until 2026-12-07, which under
        fixed sampling let through a budget no round of ``sampling.count`` fits)."""
        dp = self.dp
        if dp is None or dp.epsilon_budget is None:
            return
        largest = self.largest_round
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the plan's cost warnings: the server gives them
            first = self.mechanism().epsilon_after_next(contributors=largest, participants=None)
        if first is not None and first > dp.epsilon_budget:
            drawn = (
                ""
                if largest == len(self.clients)
                else f" of {largest} clients, the most sampling.count draws"
            )
            raise ConfigurationError(
                f"dp.epsilon_budget = {dp.epsilon_budget:g} is below the epsilon of a single "
                f"round{drawn} ({shown(first, 4, significant=True)}): no round could run; "
                "raise the budget or dp.noise_multiplier"
            )

    def mechanism(self, *, seed: bytes | None = None) -> Mechanism:
        """The DP mechanism of ``[dp]`` (:mod:`secagg.dp.release`); ``seed``: tests only."""
        return mechanism_for(
            self.dp,
            dimension=self.dimension,
            bits=self.backend.bits,
            sample_rate=self.sample_rate,
            expected_clients=self.expected_clients,
            corrupt_fraction=self.backend.corrupt_fraction,
            seed=seed,
            clip_cap=self.backend.value_bound,
            population=len(self.clients),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FederationConfig:
        """Build from the TOML layout (sections as nested tables); unknown keys are errors."""
        if not isinstance(data, dict):  # dict(None) is a TypeError, dict("ab") a ValueError
            raise ConfigurationError(
                f"a federation config is a table of sections, not {type(data).__name__}"
            )
        data = dict(data)
        known = {"federation", "sampling", "backend", "dp", "deadlines", "server"}
        for key in sorted(set(data) - known):
            if not isinstance(data[key], dict):  # the message only when it is one
                raise ConfigurationError(_top_level_key(key))
        unknown_sections = sorted(set(data) - known)
        if unknown_sections:
            listed = unknown_sections[:LISTED_UNKNOWN_NAMES]
            hints = _section_suggestions(listed, known, len(unknown_sections))
            raise ConfigurationError(f"unknown sections: {listed_names(unknown_sections)}{hints}")
        _require(isinstance(data.get("federation", {}), dict), "[federation] must be a table")
        top = dict(data.get("federation", {}))
        # a section written as a key of [federation] (``backend = "ckks"``, or the dotted
        # ``dp.clip = 1`` under [federation]) reached the dataclass as a str or a dict
        # and failed as an AttributeError traceback (config fuzz, 2026-12-05)
        for name in sorted(set(top) & (known - {"federation"})):
            raise ConfigurationError(
                f"[federation] {name}: [{name}] is a section of its own, not a key of "
                f"[federation]: write its keys under a [{name}] header"
            )
        sections: dict[str, Any] = {}
        for key, kind in (
            ("sampling", SamplingConfig),
            ("backend", BackendConfig),
            ("dp", DPSettings),
            ("deadlines", DeadlineConfig),
            ("server", ServerSettings),
        ):
            if key in data:
                sections[key] = _build(kind, data[key], key)
        allowed = {f.name for f in fields(cls)} - set(sections)
        unknown = set(top) - allowed
        _require(not unknown, _unknown_keys("federation", unknown, allowed))
        _require_keys(cls, top, "federation", exclude=set(sections))
        check_types(cls, top, "federation")
        # only a file can tell a tau it sets from the default: one set beside FedAvg(M)
        # changed nothing, silently (second review, 2026-12-07), as sampling.count did
        # beside Poisson sampling; server_momentum beside FedAdam is refused likewise
        _require(
            "server_adam_tau" not in top or top.get("server_optimizer", "sgd") != "sgd",
            f"federation.server_adam_tau = {_shown_value(top.get('server_adam_tau'))} is set "
            "but federation.server_optimizer is 'sgd' (the default), which has no tau: set "
            "server_optimizer = 'adam', or remove server_adam_tau",
        )
        # FedAdam moves every coordinate by about the server learning rate each round,
        # whatever the released mean's size: the default rate is FedAvg's (1.0), which
        # FedAdam takes as a step of 1 a parameter a round and wrecks the model, so a
        # file that asks for adam says its rate (as `secagg simulate` requires)
        _require(
            top.get("server_optimizer") != "adam" or "server_learning_rate" in top,
            "federation.server_optimizer = 'adam' needs federation.server_learning_rate: "
            "FedAdam moves every parameter by about it each round, and the default, "
            f"{cls.server_learning_rate:g}, is FedAvg's (e.g. 0.03, FedAdam's best on the "
            "simulator's tuning seeds: docs/results.md)",
        )
        try:
            return cls(**top, **sections)
        except TypeError as exc:
            raise ConfigurationError(f"[federation]: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> FederationConfig:
        """Read and validate a TOML file."""
        return cls.from_dict(read_toml(path))

    @classmethod
    def load_for_audit(cls, path: str | Path) -> tuple[FederationConfig, bool]:
        """The config's promises for an auditor, and whether its cohorts were seeded.

        A seeded cohort costs the per-client claims of today's servers nothing (they
        credit no amplification by sampling), but rows written before 2026-12-03 that
        claim amplification never held it under a seeded config: the second value
        (True) tells the verifier so. Mistakes are refused as by :meth:`load`; the
        :class:`SmallDrawWarning` is not given: it tells an operator how many rounds
        will abort, and the auditor reads the rounds that ran."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallDrawWarning)
            config = cls.load(path)
        return config, config.seed is not None


def _section_keys() -> dict[str, set[str]]:
    """Each section of a federation file and the keys it takes."""
    sections: dict[str, type] = {
        "sampling": SamplingConfig,
        "backend": BackendConfig,
        "dp": DPSettings,
        "deadlines": DeadlineConfig,
        "server": ServerSettings,
    }
    keys = {name: {f.name for f in fields(kind)} for name, kind in sections.items()}
    keys["federation"] = {f.name for f in fields(FederationConfig)} - set(sections)
    return keys


def _unknown_keys(section: str, unknown: set[str], allowed: set[str]) -> str:
    """``unknown keys in [dp]: ['epsilon_budgt'] (did you mean 'epsilon_budget'?)``.

    Each unknown key is matched to the closest key of its own section, else to the one
    of another section (named with it: ``clip`` under ``[backend]`` is ``[dp] clip``).
    Why: ``epsilon_budgt`` was reported without a hint, unlike the simulate config, and
    a misspelt key there is a federation that does not start (newcomer audit,
    2026-12-05). Only the first :data:`LISTED_UNKNOWN_NAMES` are listed and hinted."""
    hints: list[tuple[str, str]] = []
    elsewhere = {name: keys for name, keys in _section_keys().items() if name != section}
    names = sorted(unknown)
    for key in names[:LISTED_UNKNOWN_NAMES]:
        if (near := closest_spelling(key, allowed)) is not None:
            hints.append((key, f"did you mean {near!r}?"))
            continue
        homes = sorted(name for name, keys in elsewhere.items() if key in keys)
        if homes:
            hints.append((key, f"it belongs in [{homes[0]}]"))
            continue
        for name, keys in sorted(elsewhere.items()):
            if (near := closest_spelling(key, keys)) is not None:
                hints.append((key, f"did you mean [{name}] {near}?"))
                break
    return f"unknown keys in [{section}]: {listed_names(names)}{_hinted(hints, len(unknown))}"


def _hinted(hints: list[tuple[str, str]], count: int) -> str:
    """`` (hint)`` for one unknown name, `` (name: hint; ...)`` for several; else nothing."""
    if not hints:
        return ""
    if count == 1:
        return f" ({hints[0][1]})"
    return f" ({'; '.join(f'{name!r}: {hint}' for name, hint in hints)})"


def _section_suggestions(unknown: list[str], known: set[str], count: int) -> str:
    """`` (did you mean [dp]?)`` for misspelt section names among ``unknown`` (the
    listed ones of ``count``), else nothing."""
    hints = [
        (name, f"did you mean [{near}]?")
        for name in unknown
        if (near := closest_spelling(name, known)) is not None
    ]
    return _hinted(hints, count)


def _top_level_key(key: str) -> str:
    """The message for a value written before any ``[section]`` header.

    Why: ``branches = 2`` above ``[federation]`` was reported as "unknown sections:
    ['branches']", which sends the reader looking for a table they never wrote."""
    homes = [
        name
        for name, kind in (
            ("federation", FederationConfig),
            ("sampling", SamplingConfig),
            ("backend", BackendConfig),
            ("dp", DPSettings),
            ("deadlines", DeadlineConfig),
            ("server", ServerSettings),
        )
        if key in {f.name for f in fields(kind)}
    ]
    where = f"[{homes[0]}]" if homes else "its section ([federation], [sampling], [backend], ...)"
    return f"key {key} at the top level, before any [section] header: put it in {where}" + (
        "" if homes else f"; no section has a key {key!r}"
    )


_UTF8_BOM = b"\xef\xbb\xbf"


#: the largest federation (or simulation) config :func:`read_toml` reads: its clients
#: list may name a million branches (MAX_NUM_CLIENTS), a few dozen bytes each; past it
#: the file is no config, and reading it whole would only fill memory
MAX_CONFIG_BYTES = 256 * 1024 * 1024


def read_regular_file(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes``, read through ONE
    open (:func:`secagg.durable.read_regular_file`, where every layer's reader of a
    user-named file now reads): a missing, oversized or special file (a named pipe, a
    device, a folder), or a path that names no file, is a one-line
    :class:`ConfigurationError` naming ``path`` and ``what`` it should have been (``a
    configuration file``, ``a public key file``); a named pipe or a device as its
    subclass :class:`~secagg.errors.NotARegularFile`, an oversized file as
    :class:`~secagg.errors.FileTooLarge`. A file the machine will not read (no
    permission, an I/O error) is the :class:`OSError` itself: the machine's refusal, not
    the file's mistake, which the commands say with exit 1 naming the flag (the one rule,
    ``secagg.apps.commands.common.os_error_status``). It was a ConfigurationError, so
    ``server --config``, ``client --policy`` and ``audit verify --pubkey`` on a file
    they may not read said exit 2, and their OSError handlers never ran (path-failure
    review, 2026-12-07).

    Why one open: checking the path with ``stat`` and then opening it let the file be
    swapped in between (a named pipe blocks ``open()`` forever, waiting for a writer; a
    huge file was read whole)."""
    try:
        return durable.read_regular_file(path, max_bytes, what)
    except FileNotFoundError:
        raise ConfigurationError(f"no {what.removeprefix('a ')} at {path}") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{path} is a directory, not {what}") from None
    except OSError as exc:
        if exc.errno in _PATH_NAMES_NO_FILE:  # the path is the mistake: the user's
            raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
        raise  # the machine's refusal: the command says it by its flag, exit 1


#: the errnos of a path that names no file (a folder on it a file, too long, a loop of
#: links), besides a missing one and a folder, said above: the user's mistake, as
#: ``secagg.apps.commands.common.PATH_MISTAKE_ERRNOS`` says it
_PATH_NAMES_NO_FILE = frozenset({errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP})


def read_toml(path: str | Path, max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """A TOML file's tables; a missing, non-UTF-8, malformed or oversized file
    (past ``max_bytes``), or a path that is not a regular file (a named pipe blocked
    open() forever), is a one-line :class:`ConfigurationError` naming it (every
    command's config and policy files are read here, through one open:
    :func:`read_regular_file`). A UTF-8 byte-order mark, which some Windows editors
    write, is skipped: TOML is UTF-8 either way. ``path`` must be a str or a path:
    ``open(5)`` would read (and then close) whatever file descriptor 5 is."""
    if not isinstance(path, str | os.PathLike):
        raise ConfigurationError(
            f"a configuration file is given by its path, not {type(path).__name__}"
        )
    raw = read_regular_file(path, max_bytes, "a configuration file")
    try:
        text = raw.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    except ValueError:
        # tomllib reads an integer through int(), which refuses more digits than
        # sys.get_int_max_str_digits() (4300) with a plain ValueError: a traceback
        raise ConfigurationError(
            f"{path} holds an integer of more than {sys.get_int_max_str_digits()} digits, "
            "more than any key takes"
        ) from None


def _require_keys(
    kind: type, values: dict[str, Any], section: str, exclude: set[str] = frozenset()
) -> None:
    """Name the keys a section lacks (a dataclass would say "__init__() missing 1
    required positional argument", CLI audit)."""
    missing = [
        f.name
        for f in fields(kind)
        if f.init
        and f.name not in values
        and f.name not in exclude
        and f.default is MISSING
        and f.default_factory is MISSING
    ]
    _require(not missing, f"[{section}] lacks {', '.join(missing)}")


def _build(kind: type, values: Any, section: str) -> Any:
    _require(isinstance(values, dict), f"[{section}] must be a table")
    allowed = {f.name for f in fields(kind)}
    unknown = set(values) - allowed
    _require(not unknown, _unknown_keys(section, unknown, allowed))
    _require_keys(kind, values, section)
    check_types(kind, values, section)
    try:
        return kind(**values)
    except TypeError as exc:
        raise ConfigurationError(f"[{section}]: {exc}") from None
