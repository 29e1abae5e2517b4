"""One round interface for every aggregation backend: plain, SecAgg, SecAgg+ and CKKS.

Theory of operation
-------------------
A round of aggregation is a conversation between one server and the round's
clients (and, for CKKS, one *helper*: the key holder). Each backend gives both
sides as sans-I/O objects, the shape :class:`secagg.protocol.Client` and
:class:`secagg.protocol.Server` already have: bytes in, bytes out, no clock,
no socket, no thread. The in-memory driver (:mod:`secagg.aggregation.local`,
behind :func:`secagg.aggregate`), the simulator, the benchmarks and the gRPC
runtime all drive these same objects, so what the tests of this package check
is what production runs.

* :meth:`AggregationBackend.plan` fixes a round's public parameters as a typed
  :class:`RoundSpec` (a frozen dataclass with a versioned binary codec, see
  :mod:`secagg.aggregation.spec`). Only the backend that owns a spec writes and
  reads its fields; everyone else carries it as bytes.
* The server side (:class:`ServerSession`) starts the round and yields
  :class:`Outgoing` events: :class:`Announce` ("give every participant this
  spec, with the model, and let them train") and :class:`ToParty` (one
  payload for one party; :data:`HELPER` is the key holder). It consumes each
  party's payloads through :meth:`ServerSession.handle`; the caller is its
  clock and calls :meth:`ServerSession.close_phase` when a phase's deadline
  passes (whoever is still in :attr:`ServerSession.waiting_for` has dropped).
  When :attr:`ServerSession.done`, :meth:`ServerSession.finish` returns the
  float sum and an :class:`AggregationReport`, or raises
  :class:`~secagg.errors.RoundAborted`: never a partial or wrong sum.
* The client side (:class:`ClientSession`) is built from the spec and the
  client's party index; :meth:`ClientSession.set_input` takes the update (a
  float vector) and :meth:`ClientSession.handle` the server's payloads; both
  return the payloads to send back.

Every ``handle`` validates before it commits: a malformed, foreign, duplicate or
out-of-phase payload raises a :class:`~secagg.errors.SecAggError` subtype and
changes nothing.

What differs between backends is stated, not hidden: each report carries the
backend's documented error bound for the sum (0 for plain float64 summation up
to rounding, ``n / scale`` for fixed-point masking, the CKKS noise bound for
CKKS), its threat model in a sentence, the dropouts per phase and the
parameters an auditor needs (:attr:`AggregationReport.details`).
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from secagg.aggregation.policy import BranchPolicy
from secagg.crypto.prg import MaskRemover
from secagg.crypto.signing import Signer, Verifier
from secagg.crypto.stream import KeyedStream
from secagg.dp.distributed import DistributedDiscreteGaussian
from secagg.errors import (
    ConfigurationError,
    DuplicateMessage,
    MalformedMessage,
    UnexpectedMessage,
    UnknownParty,
)

#: the party index of a round's helper (the CKKS key holder), never a client's
HELPER = -1

#: the longest round context a caller may bind a round to (it is hashed, not sent)
MAX_CONTEXT_BYTES = 1024


def check_context(context: object) -> bytes:
    """``context`` if it is a round context (1 to MAX_CONTEXT_BYTES bytes), else a
    :class:`~secagg.errors.ConfigurationError`: an empty one would bind to nothing."""
    if not isinstance(context, bytes) or not 1 <= len(context) <= MAX_CONTEXT_BYTES:
        raise ConfigurationError(
            f"a round context is 1 to {MAX_CONTEXT_BYTES} bytes, not {context!r:.60}"
        )
    return context


@dataclass(frozen=True)
class AggregationReport:
    """Who took part in a round and what the sum is worth, for any backend."""

    backend: str
    num_clients: int
    dimension: int
    contributed: tuple[int, ...]
    dropped: tuple[int, ...]
    error_bound: float  # max abs error per coordinate of the returned sum vs the true sum
    threat_model: str
    details: dict[str, Any] = field(default_factory=dict)  # the parameters, for the ledger
    dropouts: dict[str, int] = field(default_factory=dict)  # phase -> clients lost in it
    noise_stddev: float = 0.0  # Gaussian noise the backend already added to the sum


@dataclass(frozen=True)
class AggregationResult:
    """The float sum of the contributions received, and the report."""

    total: np.ndarray
    report: AggregationReport

    def __iter__(self) -> Iterator[Any]:
        """``total, report = aggregate(...)``."""
        return iter((self.total, self.report))


# --- what a server session emits ---------------------------------------------


@dataclass(frozen=True)
class Announce:
    """Start the round at every participant: send each its party index, this spec
    and the model. Clients train when they receive it."""

    spec: bytes


@dataclass(frozen=True)
class ToParty:
    """One payload for one party (a client's index, or :data:`HELPER`)."""

    party: int
    payload: bytes


Outgoing = Announce | ToParty


# --- the round's public parameters -------------------------------------------


@dataclass(frozen=True)
class RoundSpec:
    """A round's public parameters, written and read by the backend that owns them.

    Subclasses add their fields and a binary body codec; the envelope (magic,
    version, backend name) is :mod:`secagg.aggregation.spec`'s.
    """

    backend: ClassVar[str] = ""
    num_clients: int
    dimension: int

    def encode_body(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode_body(cls, body: bytes, name: str) -> RoundSpec:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The backend's name as configured (``secagg`` and ``secagg+`` share a spec)."""
        return self.backend

    def identity_certificates(self) -> tuple[bytes, ...]:
        """The parties' public identities the round's signatures rest on (active
        variants), by party index; every branch checks them against its CA."""
        return ()

    @property
    def input_bound(self) -> float | None:
        """The largest absolute coordinate of an update this round's arithmetic was
        sized for (``value_bound``), or None where any value fits."""
        return None

    def check_policy(self, policy: BranchPolicy) -> None:
        """Raise :class:`~secagg.errors.PolicyRefused` if this round is weaker than
        ``policy`` allows. Subclasses add their own parameters' checks to these."""
        policy.check_backend(self.name)
        policy.check_size(self.num_clients, self.dimension)
        self.check_noise_policy(policy)

    def check_noise_policy(self, policy: BranchPolicy) -> None:
        """The branch's own noise share against ``policy``'s floor: a round carries none
        unless its spec says otherwise (the masking specs' distributed DP override this),
        so a branch with ``min_noise_multiplier`` or ``record_sensitivity`` refuses it.

        Why here, for every backend: each spec added the check itself, and the plain
        spec did not, so a branch that required its own noise share (and had opted into
        ``plain``) took a plain round, whose update goes in clear and unnoised."""
        policy.check_noise_share(noise_multiplier=None, clip=None, expected_clients=None)

    def fewest_in_sum(self, policy: BranchPolicy) -> int | None:
        """The fewest parties, this branch included, whose inputs a sum of this round can
        hold once this branch's input is in it, as this branch's own protocol enforces
        under ``policy`` (None: the backend enforces no such floor).

        Why: a hostile server decides who "drops out": it can leave out every party it
        likes down to whatever the protocol still unmasks, whatever dropout fraction a
        branch assumes. A branch that counts the honest noise shares in the sum
        (``branch.epsilon_budget``) counts at most this floor less its colluders."""
        return None

    def drawn_from(self) -> int:
        """The population this round was drawn from, as its spec names it (at least the
        round itself): all of its colluders may be in the round.

        Why the runtime asks the spec: a branch's budget counts the colluders of the
        largest population it knows of (its ``expected_clients``, and the one the round
        itself names), as its protocol's checks do; a round named as drawn from 100 was
        charged at the honest shares of its own 20 (review of colluders, 2026-12-07)."""
        return self.num_clients

    def own_noise_share(self) -> DistributedDiscreteGaussian | None:
        """The distributed-DP mechanism whose noise share every client adds itself, before
        its input leaves it (None: the round carries none; noise the server or a key
        holder adds is theirs, not the client's).

        Why the runtime asks the spec: a branch with its own privacy budget
        (``branch.epsilon_budget``) charges only noise it adds and can account for
        itself, and the runtime never names a backend."""
        return None


@dataclass(frozen=True)
class RoundIdentity:
    """A party's long-term signing key and the round's identity keys, verified by the
    caller (a federation branch checks each certificate against its CA)."""

    signing_key: Signer
    verify_keys: Mapping[int, Verifier]

    def __repr__(self) -> str:
        return f"RoundIdentity({len(self.verify_keys)} parties)"


@dataclass(frozen=True, order=True)
class Phase:
    """A phase of a round as its server session runs them: ``rank`` orders the phases
    (a later phase has a larger rank; the round's end, complete or aborted, ranks after
    every phase), ``name`` is what :attr:`ServerSession.phase` calls it.

    Why ordered: a payload that arrives after its sender was dropped is late (an honest,
    slow party) only if it is of a phase the round has passed; one of the phase in
    flight or of a phase to come cannot be an honest party's (a party dropped is sent
    nothing after), and the runtime logs it as a refusal (:meth:`ServerSession.phase_of`)."""

    rank: int
    name: str = field(compare=False)


# --- the two sides of a round ------------------------------------------------


class ServerSession(abc.ABC):
    """The server's side of one round (see the module docstring)."""

    def bind_round(self, context: bytes) -> None:
        """Tie the round to ``context``, public facts its clients check themselves (a
        federation's round number), before :meth:`start`.

        A backend whose messages carry a round id that signatures and key derivations
        rest on (the masking backends) derives it from ``context`` and the spec, and
        its clients, bound to the same facts (:meth:`ClientSession.bind_round`), refuse
        any other: a server can then replay nothing signed in one round into another.
        Backends whose payloads carry no such id (plain; CKKS, whose key holder
        decrypts each round number once) have nothing to bind and only check the type.
        """
        check_context(context)

    @abc.abstractmethod
    def start(self) -> list[Outgoing]:
        """Open the round; the first outgoing events."""

    @abc.abstractmethod
    def handle(self, party: int, payload: bytes) -> list[Outgoing]:
        """One payload from ``party``; refused payloads raise and change nothing."""

    @abc.abstractmethod
    def close_phase(self) -> list[Outgoing]:
        """The phase's deadline passed: whoever is still awaited has dropped."""

    @abc.abstractmethod
    def abort(self, reason: str) -> list[Outgoing]:
        """Abort on the caller's request (a round deadline, a shutdown)."""

    @property
    @abc.abstractmethod
    def phase(self) -> str:
        """The current phase's name (for deadlines and logs)."""

    @property
    @abc.abstractmethod
    def waiting_for(self) -> frozenset[int]:
        """The parties whose payload the current phase still awaits."""

    @property
    @abc.abstractmethod
    def done(self) -> bool:
        """The round has ended (complete or aborted): call :meth:`finish`."""

    @abc.abstractmethod
    def finish(self) -> AggregationResult:
        """The float sum and report, or :class:`~secagg.errors.RoundAborted`."""

    def dropouts(self) -> dict[str, int]:
        """Clients lost in each phase closed so far (also for an aborted round)."""
        return {}

    def phase_of(self, party: int, payload: object) -> Phase | None:
        """The phase ``payload`` from ``party`` would be a payload of, read from its header
        (its kind) alone, or None when the header does not say (not this backend's
        message, or a kind sent in more than one phase). Changes nothing, never raises,
        and says nothing of whether the payload is valid: :meth:`handle` decides that.

        Why: the runtime tells a late answer (of a phase the round has passed, from a
        slow party) from a payload of the phase in flight or a later one from a party
        the round dropped, which no honest party sends; before, both were logged as
        late. The runtime compares it with :attr:`current_phase` and never asks which
        backend runs. The default knows no phases (a payload is then not late)."""
        del party, payload
        return None

    @property
    def current_phase(self) -> Phase | None:
        """The phase the round is in, ranked as :meth:`phase_of` ranks payloads (None:
        this session does not rank its phases)."""
        return None

    def contributors_before_reveal(self) -> int | None:
        """When the next events reveal the sum to the server (masking: the unmasking
        requests), how many contributions it holds; None otherwise. A caller that
        must not see the sum (an exhausted privacy budget) aborts instead of sending.
        CKKS: the decryption request, whose reply is the sum as the key holder noised it."""
        return None

    def noise_at_reveal(self) -> float:
        """The Gaussian noise std the sum carries when it is revealed to the server: what
        the backend adds before anyone sees the sum (the CKKS key holder, which this
        session holds to at least that much), 0 where the server sees it un-noised.

        Why: where the backend adds the central noise, the server's sight of the sum is
        the release (nobody sees it un-noised), and a sum revealed before a crash must
        be charged as the distributed mechanism's is (:meth:`Mechanism.charge_at_reveal`)."""
        return 0.0

    def noise_of_reply(self, party: int, payload: object) -> float | None:
        """The backend noise std under which ``payload`` from ``party``, not yet handled,
        would reveal the sum to the server (the CKKS key holder's decrypted reply: the
        std it reports, 0.0 when it vouches for none); None for a message that reveals no
        sum, which is every message of a backend whose server reveals the sum itself
        (masking). Reads without changing anything and never raises.

        Why: the runtime makes a charge below the one noted before the reveal durable
        before :meth:`handle` reads the message, so no crash in between restarts charged
        at noise that did not run."""
        return None

    def reveal_refused(self) -> bool:
        """Whether the party that was to reveal the sum refused to, and that refusal is
        all it sent (the CKKS key holder's refusal reply to the decryption request):
        nothing of the sum reached the server, so a charge noted before the request left
        (:meth:`noise_at_reveal`) is not a release. False where the server itself
        reveals the sum (masking) or anything else came back."""
        return False

    def accusations(self) -> dict[int, frozenset[int]]:
        """Parties other parties named as the senders of shares that did not open:
        accused -> accusers (also for an aborted round). The runtime excludes a
        party enough distinct others accused, so one bad branch cannot veto rounds."""
        return {}

    def inconsistent_shares(self) -> dict[int, frozenset[int]]:
        """Disputed pairs found when the secrets were rebuilt: holder -> the owners of
        which it revealed a share off the owner's committed polynomial (also for an
        aborted round).

        A pair, not a verdict: the holder lied at unmasking, or the owner dealt it a
        wrong share, and the server cannot tell which (no verifiable secret sharing).
        The sum is exact either way (t other shares opened the commitment); what an
        operator needs is to see the pair, as it sees accusations, and to look at both
        parties if either recurs. It excludes nobody by itself."""
        return {}


class PhasedServerSession(ServerSession):
    """For sessions that keep their phase as a name: ``not_started`` ... ``complete`` or
    ``aborted``. Gives :meth:`abort`, :attr:`phase` and :attr:`done` once."""

    _phase = "not_started"
    _abort_reason: str | None = None
    #: the session's phases in the order a round runs them, the ends last; a subclass
    #: that lists them gets :attr:`current_phase` (and ranks payloads with :meth:`_ranked`)
    PHASES: ClassVar[tuple[str, ...]] = ()

    def _ranked(self, name: str) -> Phase | None:
        """Phase ``name`` ranked by its place in :attr:`PHASES` (None: not listed)."""
        return Phase(self.PHASES.index(name), name) if name in self.PHASES else None

    @property
    def current_phase(self) -> Phase | None:
        return self._ranked(self._phase)

    def abort(self, reason: str) -> list[Outgoing]:
        if not isinstance(reason, str):  # refused before the round changes, as the masking one
            raise ConfigurationError(f"an abort reason is text, not {type(reason).__name__}")
        if self.done:
            raise UnexpectedMessage(f"the round is already {self._phase}")
        self._abort(reason)
        return []

    def _abort(self, reason: str) -> None:
        self._phase, self._abort_reason = "aborted", reason

    @property
    def phase(self) -> str:
        return self._phase

    @property
    def done(self) -> bool:
        return self._phase in ("complete", "aborted")


class ClientSession(abc.ABC):
    """A client's side of one round."""

    party: int

    def bind_round(self, context: bytes) -> None:
        """Refuse every round but the one ``context`` names (see
        :meth:`ServerSession.bind_round`), before the first payload is handled.

        Each party enforces its own policy: a federation branch passes the round it
        started itself (its round numbers only grow), so a server that reuses one
        round's protocol id in another, to replay a branch's signed keys to its
        neighbours, is refused. The default is for backends with no round id to bind."""
        check_context(context)

    @abc.abstractmethod
    def set_input(self, update: np.ndarray) -> list[bytes]:
        """This client's update (float64, the round's dimension); payloads to send."""

    @abc.abstractmethod
    def handle(self, payload: bytes) -> list[bytes]:
        """One payload from the server; the payloads to send back."""


class HelperSession(abc.ABC):
    """A backend's helper (the CKKS key holder): requests in, one reply each."""

    @abc.abstractmethod
    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        """Answer one request from the server for round ``round_number``; refused
        requests raise. The round number is what the helper's own rules are keyed
        on (the CKKS key holder decrypts each round number once, in increasing
        order), so every caller passes the round the request belongs to."""

    def refusal(self, error: BaseException) -> bytes | None:
        """The reply telling the server that :meth:`handle` refused a request with
        ``error``, or None when this helper has none (the server then waits out the
        phase's deadline). Why: silence made a round the helper had refused wait its
        whole deadline before aborting; a reply lets the server abort at once, with the
        helper's reason. Never raises."""
        del error
        return None

    def after_reply(self) -> None:
        """Say what the helper has to say of its last answered request once that reply
        has left (or could not be sent): called by whoever sends :meth:`handle`'s reply,
        after sending it. Default: nothing. Never raises.

        Why: whatever the helper does before its reply leaves is in the reply's timing.
        The CKKS key holder wrote its warning that it clamped a sum (its own log, never
        the server's) inside the decryption, only when it clamped, so the reply left
        about 0.1 ms later exactly when the exact sum crossed the plausible box: the
        un-noised bit the clamp is there to hide
        (tests/aggregation/test_keyholder_clamp_notice_after_reply.py)."""
        return None


class AggregationBackend(abc.ABC):
    """A configured backend: plans rounds and builds both sides of each.

    ``name`` is what configs and reports call it. Options that matter to
    privacy or correctness live in the spec, so every party reads the same.
    """

    name: str
    #: the typed round options :meth:`plan` accepts (e.g. a DP noise share)
    round_options: tuple[str, ...] = ()

    @abc.abstractmethod
    def plan(self, num_clients: int, dimension: int, **extras: Any) -> RoundSpec:
        """The public parameters of a round of ``num_clients`` and ``dimension``.

        ``extras`` are typed round options some backends take (the distributed
        DP noise share for the masking backends); others refuse them.
        """

    def unmask_with(
        self, remover: MaskRemover | None = None, *, workers: int | None = None
    ) -> None:
        """How the server removes a round's masks at its close (threads, or ``remover``
        over a cluster of its own): a local choice. A backend without masks refuses,
        so a server configured for it hears at start that the setting does nothing."""
        del remover, workers
        raise ConfigurationError(
            f"the {self.name} backend has no masks to remove: [server] unmask_on and "
            "unmask_workers apply to the masking backends"
        )

    @abc.abstractmethod
    def server(
        self, spec: RoundSpec, *, noise_stddev: float = 0.0, public_seed: bytes | None = None
    ) -> ServerSession:
        """The server's side of a planned round.

        ``noise_stddev`` asks for Gaussian noise on the sum where it is first
        decrypted (the CKKS key holder adds it, so nobody sees an un-noised
        sum); backends that cannot add it ignore it and report 0 in
        :attr:`AggregationReport.noise_stddev`.

        ``public_seed`` fixes the round's public randomness (SecAgg+'s neighbour
        graph); None, as in any deployment, draws it from the OS CSPRNG. Only a
        simulation's replay passes one, so that the same seed sends the same bytes:
        anyone holding it can predict the graph, and corrupted clients chosen knowing
        the graph could surround one branch. Backends without public randomness
        ignore it.
        """

    def client(
        self,
        spec: RoundSpec,
        party: int,
        *,
        rounding: KeyedStream | None = None,
        policy: BranchPolicy | None = None,
        identity: RoundIdentity | None = None,
    ) -> ClientSession:
        """Client ``party``'s side, built only once ``spec`` passed the branch's ``policy``.

        Every party that is not also the server (a branch of a federation) passes
        its own :class:`~secagg.aggregation.policy.BranchPolicy`: a round weaker than
        it raises :class:`~secagg.errors.PolicyRefused` before any backend code runs
        and before the update is given. ``policy=None`` is for callers that chose
        the spec themselves (the in-memory driver, the simulator, benchmarks).
        ``rounding`` keys stochastic rounding (default: the OS CSPRNG);
        ``identity`` is this party's signing key and the round's verified identity
        keys (rounds whose spec has :meth:`RoundSpec.identity_certificates`).
        """
        check_client_options(spec, rounding=rounding, policy=policy, identity=identity)
        if policy is not None:
            spec.check_policy(policy)
        return self.open_client(spec, party, rounding=rounding, policy=policy, identity=identity)

    @property
    def needs_identities(self) -> bool:
        """Whether :meth:`plan` needs the parties' identities (an ``identities`` option)."""
        return False

    @abc.abstractmethod
    def open_client(
        self,
        spec: RoundSpec,
        party: int,
        *,
        rounding: KeyedStream | None,
        policy: BranchPolicy | None,
        identity: RoundIdentity | None = None,
    ) -> ClientSession:
        """Build the client side (called by :meth:`client` after the policy check)."""

    def helper(
        self, settings: Mapping[str, Any] | None = None, *, base_dir: Path | None = None
    ) -> HelperSession | None:
        """The helper this backend needs (the CKKS key holder), or None.

        ``settings`` is the helper's own configuration (its policy, its key file),
        never the server's; relative paths in it are resolved against ``base_dir``."""
        if settings:
            raise ConfigurationError(f"the {self.name} backend has no helper to configure")
        return None

    def configless_helper_settings(
        self, settings: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        """The helper's ``settings`` when it runs without the federation's config: its
        own defaults for what the config would otherwise fix (the CKKS key holder's caps
        on the design point it makes a key for). The runtime calls this instead of
        asking which backend it runs (the layers' rule: no backend names above the
        engine); a backend without a helper returns ``settings`` unchanged."""
        return settings

    def make_helper_key(self, path: Path) -> bytes:
        """Make and save the helper's long-term key; returns the fingerprint parties pin."""
        raise ConfigurationError(f"the {self.name} backend has no key holder")

    @property
    def needs_helper(self) -> bool:
        return False


# --- small checks shared by the backends --------------------------------------


def real_array(values: object, what: str) -> np.ndarray:
    """``values`` as float64, or a ConfigurationError naming ``what``.

    Why not ``np.asarray(values, dtype=float64)`` alone: it raises numpy's own
    ValueError on a ragged list, parses text such as ``"0.5"`` as a number, and
    drops the imaginary part of complex values with only a warning, so a wrong
    input summed to a silently wrong result. Real numbers (bool, integers, floats,
    and an object array holding only numbers) are taken; anything else is refused.
    """
    try:
        raw = np.asarray(values)
    except ValueError as exc:  # a ragged nested list
        raise ConfigurationError(
            f"{what} must be a rectangular array (ragged rows): {exc}"
        ) from None
    if raw.dtype.kind == "O":
        try:
            return raw.astype(np.float64)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{what} must hold real numbers only") from None
    if raw.dtype.kind not in "biuf":
        raise ConfigurationError(f"{what} must hold real numbers, not {raw.dtype} values")
    return raw.astype(np.float64, copy=False)


def check_client_options(
    spec: object, *, rounding: object, policy: object, identity: object
) -> None:
    """The client side's inputs by type, or a ConfigurationError naming the wrong one.

    Why: a policy given as its file's path, or a rounding seed given as bytes, failed
    as an AttributeError deep in the backend (``'str' object has no attribute
    'check_backend'``), after the caller believed the round had been checked."""
    if not isinstance(spec, RoundSpec):
        raise ConfigurationError(f"a round spec is needed, not {type(spec).__name__}")
    for name, value, kind in (
        ("rounding", rounding, KeyedStream),
        ("policy", policy, BranchPolicy),
        ("identity", identity, RoundIdentity),
    ):
        if value is not None and not isinstance(value, kind):
            raise ConfigurationError(
                f"{name} must be a {kind.__name__} or None, not {type(value).__name__}"
            )


def check_update(update: np.ndarray, dimension: int) -> np.ndarray:
    """A finite float64 vector of the round's dimension, or a ConfigurationError."""
    x = real_array(update, "the update")
    if x.shape != (dimension,):
        raise ConfigurationError(f"expected an update of shape ({dimension},), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ConfigurationError("the update contains NaN or infinite values")
    return x


def check_bound(update: np.ndarray, value_bound: float, party: int) -> None:
    """Refuse an update beyond the bound the round's arithmetic was sized for."""
    if np.max(np.abs(update), initial=0.0) > value_bound:
        raise ConfigurationError(
            f"client {party}'s update has a coordinate beyond the round's value bound "
            f"{value_bound:g}: clip it first (dp.clip), the arithmetic was sized for that bound"
        )


def check_round_size(num_clients: int, dimension: int, minimum_clients: int = 1) -> None:
    """Integers (not bools) in range: ``"4"`` failed as a TypeError, while a dimension of
    3.5 and ``num_clients=True`` were planned into a spec."""
    for name, value in (("num_clients", num_clients), ("dimension", dimension)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigurationError(f"{name} must be an integer, not {value!r}")
    if num_clients < minimum_clients:
        raise ConfigurationError(f"a round needs at least {minimum_clients} clients")
    if dimension < 1:
        raise ConfigurationError("the dimension must be at least 1")


def check_party(party: int, num_clients: int) -> None:
    """A client index of the round, or UnknownParty (also for "0", None, 1.5 and True,
    which failed as TypeErrors or passed the range check)."""
    if (
        isinstance(party, bool)
        or not isinstance(party, numbers.Integral)
        or not 0 <= party < num_clients
    ):
        raise UnknownParty(f"client {party!r} is not in this round")


def payload_bytes(payload: object) -> bytes:
    """A payload as bytes, or MalformedMessage: ``bytes(None)`` and ``bytes("text")``
    raised TypeError, and ``bytes(5)`` made five zero bytes of an int."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise MalformedMessage(f"a payload is bytes, not {type(payload).__name__}")
    return bytes(payload)


def spec_label(spec: object) -> str:
    """A spec's backend name for an error message, whatever was given as the spec."""
    return str(spec.name) if isinstance(spec, RoundSpec) else f"non-spec {type(spec).__name__}"


def admit(party: int, num_clients: int, received: set[int]) -> None:
    """Refuse a contribution from outside the round or a second one from the same client."""
    check_party(party, num_clients)
    if party in received:
        raise DuplicateMessage(f"client {party} already contributed")


def split_parties(num_clients: int, received: Iterable[int]) -> tuple[tuple[int, ...], ...]:
    """(contributed, dropped) as sorted tuples."""
    got = sorted(set(received))
    return tuple(got), tuple(p for p in range(num_clients) if p not in set(got))
