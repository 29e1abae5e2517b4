"""A branch's own policy: the weakest round it will take part in.

Why this exists
---------------
A round's parameters (:class:`~secagg.aggregation.base.RoundSpec`) are chosen
by the server. If a branch did whatever the spec said, every guarantee would
rest on the server choosing honestly: ``plain`` sends the update in clear, a
CKKS key the server made lets it decrypt each upload, a lowered threshold or a
lowered noise share gives away an update. So each branch holds a
:class:`BranchPolicy` of its own (a ``[branch]`` section of its config file,
or ``secagg client`` options) and the client side of a round is only ever
built after the spec passed it (:meth:`AggregationBackend.client
<secagg.aggregation.base.AggregationBackend.client>` checks it before any
backend code runs). A weaker spec raises
:class:`~secagg.errors.PolicyRefused` naming the setting, and nothing of the
update leaves.

The defaults are the safe ones: masking backends and CKKS allowed, ``plain``
only with ``allow_plain = true``, CKKS only with a pinned key-holder
fingerprint, the Shamir threshold the branch computes itself from its own
assumptions about colluders and dropouts (never the server's), and bounded
round sizes. What the branch cannot check it does not pretend to: noise the
*server* adds (central DP) or the key holder adds (CKKS) is theirs; a branch
that wants a noise floor it can verify sets ``min_noise_multiplier`` and then
takes part only in rounds where it adds its own noise share (distributed DP).
"""

from __future__ import annotations

import hmac
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any, Final

from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.dp.display import shown
from secagg.errors import (
    ConfigurationError,
    ContradictoryPolicy,
    PolicyRefused,
    closest_spelling,
    decimal_digits,
)
from secagg.protocol import graph_params
from secagg.protocol.config import (
    DEFAULT_CORRUPT_FRACTION,
    DEFAULT_DROPOUT_FRACTION,
    DEFAULT_MIN_COLLUDERS,
)
from secagg.protocol.graph_params import MAX_NUM_CLIENTS

#: backends a branch accepts unless told otherwise (``plain`` sends updates in clear)
DEFAULT_BACKENDS = ("secagg", "secagg+", "ckks")
#: the backends whose rounds can carry a noise share of the branch's own (distributed DP)
MASKING_BACKENDS = ("secagg", "secagg+")
#: the keys that require such a share (docs/deployment.md): without one a round is refused
OWN_NOISE_KEYS = ("min_noise_multiplier", "record_sensitivity", "epsilon_budget")
#: a round larger than this is refused (a malicious server's round could exhaust memory)
DEFAULT_MAX_CLIENTS = 100_000
DEFAULT_MAX_DIMENSION = 1 << 28
#: The largest clip, and bound on an update's coordinates, any round has: a federation's
#: ``[backend] value_bound`` and ``[dp] clip``, ``secagg simulate``'s ``clip`` and
#: ``update_clip``, and so the largest ``[branch] max_clip`` and ``record_sensitivity``
#: a round can be held to. Why a bound: ``value_bound = 1e300`` and ``clip = 1e300``
#: loaded and ran (upper-bounds review, 2026-12-06). The masking ring's arithmetic stays
#: correct at any finite bound, since its scale is chosen so that the sum cannot wrap,
#: but its step is about ``clients x value_bound / 2^(bits - 1)``: 2.5e291 for three
#: clients at 1e300, so every update rounds to 0 or to a jump of 1e291, and the model
#: learns nothing; the central noise, z x clip per coordinate, was 1e300. CKKS already
#: refused 1e300 (no ring sums it) and plain took anything finite. At 10^6 the noise
#: at the largest z (10^4) stays far within the float32 model a round carries, and the
#: ring's step at 32 bits is still 5e-4 per client; simulate took no more already.
MAX_CLIP: Final = 1e6
#: a federation's name, as ``[federation] name`` allows it and a round start carries it
FEDERATION_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class BranchPolicy:
    """What one branch requires of every round it joins (see the module docstring)."""

    backends: tuple[str, ...] = DEFAULT_BACKENDS
    allow_plain: bool = False  # explicit opt-in: the plain baseline sends updates in clear
    key_holder_fingerprint: bytes | None = None  # mandatory with ckks: the pinned key holder
    max_clip: float | None = None  # the largest L2 clip of an update (None: not required)
    min_noise_multiplier: float | None = None  # requires an own distributed-DP noise share
    #: record-level distributed DP: the most one of this branch's protected units (a
    #: customer) moves its update; a round's noise must be sized for at least that
    record_sensitivity: float | None = None
    expected_clients: int | None = None  # cohort the branch expects; bounds the noise split
    min_threshold: int | None = None  # an absolute floor on the Shamir threshold t
    require_active: bool = False  # masking: only the malicious-server (active) variant
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION  # the branch's own assumption: its t
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION
    #: tolerated colluders at any cohort size with room for them (at most n - 2: the
    #: sum of n - 1 colluders and this branch is its update, which no threshold helps)
    min_colluders: int = DEFAULT_MIN_COLLUDERS
    max_clients: int = DEFAULT_MAX_CLIENTS
    max_dimension: int = DEFAULT_MAX_DIMENSION
    #: the one federation this branch joins (its ``[federation] name``); None: the one
    #: the server names at the first round (then held to for the process and its state)
    federation: str | None = None
    #: the epsilon this branch's customers may lose over all the rounds it takes, at
    #: ``delta``, accounted by the branch itself (:mod:`secagg.runtime.branch_budget`);
    #: None: no budget of its own (the server's ``dp.epsilon_budget`` alone)
    epsilon_budget: float | None = None
    delta: float | None = None  # required with epsilon_budget: the branch knows its N

    def __post_init__(self) -> None:
        self._check_types()
        if "plain" in self.backends and not self.allow_plain:
            raise ConfigurationError(
                "branch.backends lists 'plain', which sends the update in clear: set "
                "branch.allow_plain = true to accept it explicitly"
            )
        if self.allow_plain and "plain" not in self.backends:
            object.__setattr__(self, "backends", (*self.backends, "plain"))
        if self.key_holder_fingerprint is not None and len(self.key_holder_fingerprint) != 32:
            raise ConfigurationError(
                "branch.key_holder_fingerprint must be the 64 hex digits the key holder prints"
            )
        for name in ("max_clip", "min_noise_multiplier", "record_sensitivity", "epsilon_budget"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"branch.{name} must be positive and finite")
        self._check_budget()
        for name in ("expected_clients", "min_threshold"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigurationError(f"branch.{name} must be at least 1")
        for name in ("corrupt_fraction", "dropout_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigurationError(f"branch.{name} must lie in [0, 1)")
        if self.min_colluders < 0:
            raise ConfigurationError("branch.min_colluders must be at least 0")
        if self.max_clients < 2 or self.max_dimension < 1:
            raise ConfigurationError("branch.max_clients >= 2 and branch.max_dimension >= 1")
        if self.federation is not None and not (
            isinstance(self.federation, str) and FEDERATION_NAME_PATTERN.fullmatch(self.federation)
        ):
            raise ConfigurationError(
                f"branch.federation must be the federation's name (1 to 64 letters, digits, "
                f"'.', '_' or '-', as its [federation] name), not {self.federation!r:.80}"
            )
        self._check_satisfiable()
        self._check_plain_is_alone()
        self._check_some_backend_serves()

    def _check_plain_is_alone(self) -> None:
        """Refuse ``allow_plain`` beside ``require_active`` or a pinned key holder, naming
        both (:class:`~secagg.errors.ContradictoryPolicy`).

        Why: each of the two guards the update against the server (the active variant
        withstands a malicious one; only the pinned key holder decrypts a CKKS upload),
        but a plain round has neither guard, carries no variant and no key, and the
        server chooses the backend. ``BranchPolicy(allow_plain=True, require_active=True)``
        built in code took a plain round, so the server the branch guarded against ran
        plain and read the update in clear; ``secagg client`` refused the pair on its
        flags and file only (hostile policy review, 2026-12-06). Checked after every
        value's own checks, so a mistake in one value is named as that value's first. A
        branch of a plain federation sets ``allow_plain`` alone."""
        if not self.allow_plain:
            return
        for guard, what in (
            ("key_holder_fingerprint", "only the pinned key holder decrypts a CKKS upload"),
            ("require_active", "the active variant withstands a malicious server"),
        ):
            if getattr(self, guard):
                raise ContradictoryPolicy(
                    ("allow_plain", guard),
                    f"{what}, but a plain round has no such guard and the server chooses "
                    "the backend, so it could run plain and receive this branch's update "
                    "in clear; keep one of the two (allow plain only to join a plain federation)",
                )

    def _check_some_backend_serves(self) -> None:
        """Refuse a policy under which no backend's round can ever be taken, naming the
        keys that exclude them all.

        Why: ``backends = []``, ``backends = ["ckks"]`` without a pinned key holder, or
        only CKKS or plain beside a key that needs the branch's own noise share
        (``min_noise_multiplier``, ``record_sensitivity``, ``epsilon_budget``: neither
        backend carries one) were taken as policies: the branch started, dialled, and
        refused every round (exit 3, an incident at the first round) for a mistake its
        policy alone showed (hostile policy review, 2026-12-06), as
        :meth:`_check_satisfiable` refuses a noise floor no federation can set.

        A masking backend can carry every requirement a policy states but its threshold:
        a masking round is taken only if some threshold keeps it private under the
        branch's own assumptions (``corrupt_fraction``, ``min_colluders``, the active
        variant), and with none for the largest round the branch takes (``max_clients``
        or ``expected_clients``), none does for any smaller one (the complete graph's
        minimum only loosens as the cohort grows, and a sparse graph's is never below
        it; checked over fractions 0 to 0.999 and colluders 0 to 5, for cohorts up to
        400, sparse graphs up to 40).
        So ``require_active`` beside ``expected_clients = 2`` (no active round of 2 is
        private, docs/protocol.md), ``corrupt_fraction = 0.999`` beside ``expected_clients
        = 10``, or ``expected_clients = 1`` (a masking round has 2 clients at least)
        leave no masking round, and without another backend that serves, no round. A
        pinned CKKS key holder does not serve ``expected_clients = 1`` either: a CKKS
        round of one is refused (:meth:`CKKSSpec.check_policy
        <secagg.aggregation.ckks.CKKSSpec.check_policy>`, 2026-12-07)."""
        needs = next((key for key in OWN_NOISE_KEYS if getattr(self, key) is not None), None)
        others = [name for name in self.backends if name in ("ckks", "plain")]
        cohort, key = self.max_clients, "max_clients"
        if self.expected_clients is not None and self.expected_clients < cohort:
            cohort, key = self.expected_clients, "expected_clients"
        # a CKKS round of one is refused (CKKSSpec.check_policy): its sum is one update
        ckks_serves = "ckks" in others and self.key_holder_fingerprint is not None and cohort >= 2
        # plain beside require_active or a pin is refused before this (_check_plain_is_alone)
        other_serves = needs is None and ("plain" in others or ckks_serves)
        if any(name in MASKING_BACKENDS for name in self.backends):
            refusing = self._masking_refused_by(cohort)
            if refusing is None or other_serves:
                return
            if cohort < 2:
                reason = "a masking round has 2 clients at least"
            elif refusing == "require_active":
                reason = (
                    f"the active variant of a round of {cohort} clients, the largest this "
                    "branch takes, has no private threshold"
                    + (" (among 2 none is)" if cohort == 2 else "")
                )
            else:
                reason = (
                    f"no threshold keeps a round of {cohort} clients, the largest this branch "
                    f"takes, private against the colluders it assumes (corrupt_fraction = "
                    f"{self.corrupt_fraction:g}, min_colluders = {self.min_colluders})"
                )
            raise ContradictoryPolicy(
                (refusing, key) if cohort >= 2 else ("backends", key),
                f"{reason}, so every masking round would be refused"
                + _ckks_refused(others, self.key_holder_fingerprint, needs, cohort),
            )
        if not others:
            raise ConfigurationError(
                f"branch.backends = {list(self.backends)!r:.80} allows no backend a round "
                f"can run, so every round would be refused; allow one of "
                f"{', '.join(MASKING_BACKENDS)} or ckks (plain with branch.allow_plain)"
            )
        if needs is not None:
            raise ContradictoryPolicy(
                ("backends", needs),
                f"the backends allowed ({', '.join(others)}) carry no noise share of this "
                "branch's own, which the latter requires, so every round would be refused; "
                f"allow a masking backend ({', '.join(MASKING_BACKENDS)}) or remove the key",
            )
        if not other_serves and self.key_holder_fingerprint is not None:
            raise ContradictoryPolicy(
                ("backends", key),
                f"a CKKS round has 2 clients at least (the sum of a round of one is its "
                f"update), and this branch takes rounds of at most {cohort}, so every "
                "round would be refused",
            )
        if not other_serves:
            raise ConfigurationError(
                "branch.backends allows only ckks, and a CKKS round needs "
                "branch.key_holder_fingerprint (otherwise the server could relay a key it "
                "made), so every round would be refused; pin the key holder or allow a "
                f"masking backend ({', '.join(MASKING_BACKENDS)})"
            )

    def _masking_refused_by(self, cohort: int) -> str | None:
        """The key that leaves no private threshold for a masking round of ``cohort``
        clients (the complete graph, its loosest), or None when one is private.

        ``require_active`` when the passive variant would have one; else the colluders'
        assumption: ``min_colluders`` when it alone, set to 0, would admit the round (in
        a small cohort its floor sets the colluders), ``corrupt_fraction`` otherwise."""
        if cohort < 2:
            return "backends"

        def private(*, active: bool, min_colluders: int) -> bool:
            return (
                graph_params.minimum_threshold(
                    cohort,
                    cohort - 1,
                    semi_malicious=active,
                    corrupt_fraction=self.corrupt_fraction,
                    dropout_fraction=self.dropout_fraction,
                    min_colluders=min_colluders,
                )
                is not None
            )

        if private(active=self.require_active, min_colluders=self.min_colluders):
            return None
        if self.require_active and private(active=False, min_colluders=self.min_colluders):
            return "require_active"
        if self.min_colluders and private(active=self.require_active, min_colluders=0):
            return "min_colluders"
        return "corrupt_fraction"

    def _check_satisfiable(self) -> None:
        """Refuse a policy no round can satisfy, or a cap above anything a round can have,
        naming the key.

        Why: ``secagg client --min-noise-multiplier 1e300`` started, dialled, and then
        refused every round (exit 3, an incident at the first round) for a noise no
        server can configure (``dp.noise_multiplier`` stops at 10^4); ``--max-clip 1e300``
        and ``record_sensitivity = 1e300`` were typos taken as policies, the latter
        refusing every round too; ``min_threshold`` above ``max_clients`` (or above
        ``expected_clients``) asks for more share holders than any round it accepts has
        (upper-bounds review, 2026-12-06); ``max_clients``, ``expected_clients`` and
        ``min_threshold`` above the largest round secagg plans (10^6) were taken from a
        file while ``secagg client`` refuses the same on its flags. Checked on the values
        alone, before anything is dialled."""
        if self.min_noise_multiplier is not None and not (
            self.min_noise_multiplier <= MAX_NOISE_MULTIPLIER
        ):
            given, most = _apart(self.min_noise_multiplier, MAX_NOISE_MULTIPLIER)
            raise ConfigurationError(
                f"branch.min_noise_multiplier must be at most {most} (the largest noise "
                f"multiplier a federation can set), not {given}: no round could satisfy it"
            )
        for name, effect in (
            ("max_clip", "a cap above the largest clip a round can have caps nothing"),
            ("record_sensitivity", "no round's noise is sized for more, so none could satisfy it"),
        ):
            value = getattr(self, name)
            if value is not None and not value <= MAX_CLIP:
                given, most = _apart(value, MAX_CLIP)
                raise ConfigurationError(
                    f"branch.{name} must be at most {most} (the largest clip a federation "
                    f"can set), not {given}: {effect}"
                )
        for name in ("max_clients", "expected_clients", "min_threshold"):
            value = getattr(self, name)
            if value is not None and value > MAX_NUM_CLIENTS:
                raise ConfigurationError(
                    f"branch.{name} must be at most {MAX_NUM_CLIENTS} (the largest round "
                    f"secagg plans, as the matching `secagg client` flags say), not {value}"
                )
        if self.min_threshold is not None:
            most, key = self.max_clients, "branch.max_clients"
            if self.expected_clients is not None and self.expected_clients < most:
                most, key = self.expected_clients, "branch.expected_clients"
            if self.min_threshold > most:
                raise ConfigurationError(
                    f"branch.min_threshold = {self.min_threshold} is above {key} = {most}: a "
                    "round's threshold is at most its number of clients, so no round this "
                    "branch accepts could satisfy it"
                )

    def _check_budget(self) -> None:
        """``delta`` goes with ``epsilon_budget``, one without the other is a mistake.

        Why no default delta: it must lie well below 1 over the number of protected units
        (customers, or branches at client level), a number only the branch knows; a default
        chosen here would be wrong for most branches, silently.

        Why no upper bound on ``epsilon_budget`` (decided in the config review of
        2026-12-06; 1e300 is accepted): a large budget is a weak policy, not an
        impossible one. Every round fits it, and the branch still refuses each round it
        cannot account for itself (one without its own noise share), which is what
        setting a budget buys over none; the server's ``dp.epsilon_budget`` has no upper
        bound either. The caps on a clip or a noise multiplier mark where arithmetic
        or learning breaks (a ring step of 1e291, noise of 10^4 clips); nothing breaks at
        a large epsilon, which is only compared with the accountant's, and any line drawn
        below it (10? 100?) would be a judgement of how much a bank's customers may lose
        that is the bank's to make, not this file's. The branch logs its spend beside the
        budget at start, and its summary shows both, so a typo (1e30 for 1.0) shows."""
        if self.delta is not None and not 0 < self.delta < 1:
            raise ConfigurationError(
                f"branch.delta must lie strictly between 0 and 1 (well below 1 over the "
                f"customers this branch protects), not {self.delta!r}"
            )
        if self.epsilon_budget is not None and self.delta is None:
            raise ConfigurationError(
                "branch.epsilon_budget needs branch.delta (secagg client --delta): the delta "
                "the budget's epsilon is at (well below 1 over the customers this branch "
                "protects)"
            )
        if self.delta is not None and self.epsilon_budget is None:
            raise ConfigurationError(
                "branch.delta is the delta of branch.epsilon_budget: set the budget too "
                "(secagg client --epsilon-budget), or remove branch.delta"
            )

    def _check_types(self) -> None:
        """Each field's type, naming its ``branch.`` key, before any range check.

        Why: the range checks compare, so a string or None where a number belongs (a
        policy built in code, or from a parsed file other than TOML) failed as a bare
        TypeError (``'<=' not supported between int and str``) instead of naming the
        key; ``backends="secagg+"`` became the tuple of its letters, refusing every
        round without saying why; ``require_active="no"`` counted as true; and
        ``min_threshold=2.5`` passed into integer comparisons."""
        backends = self.backends
        if isinstance(backends, str) or not isinstance(backends, list | tuple):
            raise ConfigurationError(
                f"branch.backends must be a list of backend names, not {backends!r}"
            )
        if not all(isinstance(b, str) for b in backends):
            raise ConfigurationError(
                f"branch.backends must be a list of backend names, not {backends!r}"
            )
        object.__setattr__(self, "backends", tuple(backends))
        for name in ("allow_plain", "require_active"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(
                    f"branch.{name} must be true or false, not {getattr(self, name)!r}"
                )
        pin = self.key_holder_fingerprint
        if pin is not None and not isinstance(pin, bytes):
            raise ConfigurationError(
                "branch.key_holder_fingerprint must be the 64 hex digits the key holder "
                f"prints (32 bytes), not {type(pin).__name__}"
            )
        optional = (
            "max_clip",
            "min_noise_multiplier",
            "record_sensitivity",
            "epsilon_budget",
            "delta",
        )
        for name in (*optional, "corrupt_fraction", "dropout_fraction"):
            value = getattr(self, name)
            if value is None and name in optional:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigurationError(f"branch.{name} must be a number, not {value!r}")
            if not _fits_float(value):  # 10**400: math.isfinite raised OverflowError
                raise ConfigurationError(
                    f"branch.{name} must be a number within the floating-point range (at "
                    f"most about 1.8e308 in magnitude), not an integer of "
                    f"{decimal_digits(int(value))} digits"
                )
            held = _as_float(value, up=name in STRICTER_WHEN_LARGER)
            if name in ("corrupt_fraction", "dropout_fraction") and held == 1.0 and value < 1:
                # 1 - 1e-30 was refused as "must lie in [0, 1)", which it does: say why
                raise ConfigurationError(
                    f"branch.{name} = {value!r:.60} is closer to 1 than any float below 1, "
                    "and a policy number is rounded only to a stricter one: held as 1.0, "
                    "which no fraction of a round's clients may be (it must lie in [0, 1))"
                )
            object.__setattr__(self, name, held)
        optional = ("expected_clients", "min_threshold")
        for name in (*optional, "min_colluders", "max_clients", "max_dimension"):
            value = getattr(self, name)
            if value is None and name in optional:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ConfigurationError(f"branch.{name} must be an integer, not {value!r}")
            object.__setattr__(self, name, int(value))

    # --- the checks every spec shares ------------------------------------------

    def refuse(self, setting: str, message: str) -> PolicyRefused:
        """The error to raise for a violated setting (named, one line)."""
        return PolicyRefused(f"branch.{setting}", message)

    def check_backend(self, name: str) -> None:
        if name == "plain" and not self.allow_plain:
            raise self.refuse(
                "allow_plain",
                "the server asked for the plain backend, which would send this branch's "
                "update in clear",
            )
        if name not in self.backends:
            raise self.refuse(
                "backends", f"the server asked for backend {name!r}; allowed: {self.backends}"
            )

    def check_size(self, num_clients: int, dimension: int) -> None:
        """The round's clients and dimension against the caps; each a whole number, or a
        ConfigurationError (a spec decoded from the wire has 32-bit counts; a library
        caller's 3.5 clients passed, and a count too long to print made the refusal's
        own text raise ValueError: second policy review, 2026-12-07)."""
        for name, count in (("clients", num_clients), ("dimension", dimension)):
            if isinstance(count, bool) or not isinstance(count, numbers.Integral):
                raise ConfigurationError(f"a round's {name} is a whole count, not {_said(count)}")
        if num_clients > self.max_clients:
            raise self.refuse(
                "max_clients",
                f"a round of {_said(num_clients)} clients (at most {self.max_clients})",
            )
        if dimension > self.max_dimension:
            raise self.refuse(
                "max_dimension",
                f"a round of dimension {_said(dimension)} (at most {self.max_dimension})",
            )
        if self.expected_clients is not None and num_clients > self.expected_clients:
            # strict, as fcp's max_clients_expected: clients beyond the cohort the branch
            # was told about can only be ones the server made up (uncounted colluders)
            raise self.refuse(
                "expected_clients",
                f"a round of {_said(num_clients)} clients; this branch expects at most "
                f"{self.expected_clients}",
            )

    def check_clip(self, clip: float | None) -> None:
        """The clip the round applies to this branch's update (the runtime's, not the spec's):
        None, NaN or +inf for a round that clips nothing, else a positive number.

        Why the sign and type are checked with or without ``max_clip``: a clip of 0, -1 or
        -inf from a library caller (a runtime of its own, a test harness) passed, since
        ``-1 <= max_clip``, and the round went on to train until its clipping refused the
        number; ``True`` passed as a clip of 1 and ``"1"`` passed without a ``max_clip``
        (a bare TypeError with one). The wire's decoder refuses a non-positive clip; the
        policy's check holds whoever calls it (hostile policy review, 2026-12-07)."""
        if clip is not None and (
            isinstance(clip, bool) or not isinstance(clip, numbers.Real) or not _fits_float(clip)
        ):
            raise ConfigurationError(
                f"a round's clip is a positive number (None: no clip), not {_said(clip)}"
            )
        if clip is not None and not math.isnan(clip) and not float(clip) > 0:
            raise ConfigurationError(
                f"a round's clip is a positive number (None: no clip), not {float(clip)!r}: "
                "no update can be clipped to it"
            )
        if self.max_clip is None:
            return
        if clip is None or not math.isfinite(clip):
            raise self.refuse(
                "max_clip",
                f"the round does not clip updates; this branch requires <= {self.max_clip:g}",
            )
        if clip > self.max_clip:
            given, most = _apart(clip, self.max_clip)
            raise self.refuse("max_clip", f"clip {given} > {most}")

    def check_noise_share(
        self,
        *,
        noise_multiplier: float | None,
        clip: float | None,
        expected_clients: int | None,
        record_level: bool = False,
        vector_bound: float | None = None,
        num_clients: int | None = None,
    ) -> None:
        """A distributed-DP round's noise share, as the spec states it (None: no share).

        ``record_level``: the share is sized for one protected unit (``clip``) inside
        a vector that sums many, bounded as a whole by ``vector_bound`` (see
        :mod:`secagg.dp.distributed`). ``num_clients``: the round's size, the most
        shares its sum can ever hold.

        Two ways a server could shrink the noise past checks on z alone (review of
        af7efd4, dp H1), both refused here:

        * a record-level share sent to a branch that protects its *whole* update: the
          noise is z times a per-unit clip the server picks (1e-6, say) while the
          update itself goes in clipped at ``vector_bound``; only a branch that set
          ``record_sensitivity`` knows what one of its units moves, so any other
          branch with a noise floor refuses, and ``max_clip`` holds the update's
          own bound, not the per-unit clip;
        * a share split over more expected clients than the round has: each share is
          z C / sqrt(expected), so a round of 10 "expecting" a million carries
          1/300 of the noise. A branch that pinned ``expected_clients`` caps the
          split by that, and takes a smaller round on purpose (a Poisson draw may be
          any size): pinned at 100, a round of 3 carries z sqrt(3 / 100), and is
          charged for the shares in its sum (docs/deployment.md); one that did not
          requires the noise of the whole round, all its clients honest and present,
          to reach its ``min_noise_multiplier``:
          z sqrt(min(n, expected) / expected), the best this round can deliver.

        A share's numbers that no share can have are a typed ConfigurationError
        (:func:`_check_share_numbers`), whoever calls."""
        if noise_multiplier is not None:
            _check_share_numbers(
                noise_multiplier, clip, expected_clients, record_level, vector_bound, num_clients
            )
        if noise_multiplier is None:
            if self.min_noise_multiplier is not None:
                raise self.refuse(
                    "min_noise_multiplier",
                    "the round carries no distributed noise share, so this branch cannot "
                    f"check that its update gets noise multiplier >= {self.min_noise_multiplier:g}",
                )
            if self.record_sensitivity is not None:
                raise self.refuse(
                    "record_sensitivity",
                    "the round carries no distributed noise share, and this branch's update "
                    "has no noise of its own (record-level distributed DP)",
                )
            return
        if self.record_sensitivity is not None:
            # the noise is z x clip: a clip below what one customer really moves this
            # branch's update by shrinks the noise below what the branch's epsilon needs
            if not record_level or clip is None:
                raise self.refuse(
                    "record_sensitivity",
                    "the round's noise share is sized for this branch's whole update "
                    "(client level), not for one of its customers; this branch takes part "
                    "in record-level DP only",
                )
            if clip < self.record_sensitivity:
                sized, moves = _apart(clip, self.record_sensitivity)
                raise self.refuse(
                    "record_sensitivity",
                    f"the round's noise is sized for a change of {sized} per protected "
                    f"unit; one of this branch's customers can move its update by {moves}",
                )
        elif record_level and self.min_noise_multiplier is not None:
            bound = clip if vector_bound is None else vector_bound
            # this branch's floor is on its whole update, which goes in clipped at the
            # vector bound; noise sized for a per-unit clip protects far less than that
            raise self.refuse(
                "min_noise_multiplier",
                f"the round's noise is sized for a change of {clip:g} per protected unit "
                f"inside an update of norm up to {bound:g}; this branch requires "
                "noise for its whole update (set branch.record_sensitivity to take part "
                "in record-level DP)",
            )
        if self.min_noise_multiplier is not None and noise_multiplier < self.min_noise_multiplier:
            given, floor = _apart(noise_multiplier, self.min_noise_multiplier)
            raise self.refuse("min_noise_multiplier", f"noise multiplier {given} < {floor}")
        if (
            self.min_noise_multiplier is not None
            and self.expected_clients is None
            and expected_clients is not None
            and num_clients is not None
            and expected_clients > num_clients
        ):
            deliverable = noise_multiplier * math.sqrt(num_clients / expected_clients)
            if deliverable < self.min_noise_multiplier:
                # rounded down: never more noise than the round delivers
                carried, floor = _apart(
                    deliverable, self.min_noise_multiplier, shown_value=_rounded_down
                )
                raise self.refuse(
                    "expected_clients",
                    f"the noise is split over {_said(expected_clients)} expected clients in "
                    f"a round of {_said(num_clients)}: even with every client honest and present "
                    f"the sum carries noise multiplier {carried} < {floor} (pin "
                    "branch.expected_clients to the cohort this branch was told about)",
                )
        # with a record-level share the update's own bound is the vector bound
        self.check_clip(vector_bound if record_level and vector_bound is not None else clip)
        # each branch adds 1/sqrt(expected) of the noise: a server claiming a larger
        # cohort shrinks every share; the branch's own expectation caps it
        if (
            self.expected_clients is not None
            and expected_clients is not None
            and expected_clients > self.expected_clients
        ):
            raise self.refuse(
                "expected_clients",
                f"the noise is split over {_said(expected_clients)} expected clients, more "
                f"than the {self.expected_clients} this branch expects (each share would be "
                "smaller)",
            )

    def check_key_holder(self, fingerprint: bytes) -> None:
        if self.key_holder_fingerprint is None:
            raise self.refuse(
                "key_holder_fingerprint",
                "a CKKS round needs the key holder's fingerprint pinned in the branch's policy "
                "(otherwise the server could relay a key it made and decrypt this update)",
            )
        if not hmac.compare_digest(fingerprint, self.key_holder_fingerprint):
            raise self.refuse(
                "key_holder_fingerprint",
                f"the round's key {fingerprint.hex()[:16]}... is not the pinned key holder's "
                f"{self.key_holder_fingerprint.hex()[:16]}...",
            )

    def check_federation(self, name: str) -> None:
        """The federation a round belongs to (its start names it): refused unless it is
        the one this branch joins, before anything is trained or sent.

        Why a branch pins it: the same branch certificate may be admitted by servers of
        several federations; without a pin the branch takes part in whichever one the
        server it dials runs."""
        if self.federation is not None and name != self.federation:
            raise self.refuse(
                "federation",
                f"the round is of federation {name!r}; this branch joins only "
                f"{self.federation!r} (secagg client --federation)",
            )

    # --- from a config file -------------------------------------------------------

    @classmethod
    def from_dict(cls, section: dict[str, Any]) -> BranchPolicy:
        """From a ``[branch]`` TOML table; unknown keys and bad values name the key."""
        if not isinstance(section, dict):
            raise ConfigurationError("[branch] must be a table")
        values = dict(section)
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(values) - allowed))
        if unknown:
            raise ConfigurationError(
                f"unknown keys in [branch]: {unknown}{_suggestions(unknown, allowed)}"
            )
        pin = values.get("key_holder_fingerprint")
        if pin is not None:
            values["key_holder_fingerprint"] = parse_fingerprint(pin)
        if isinstance(values.get("backends"), list):  # TOML arrays: a tuple, as in code
            values["backends"] = tuple(values["backends"])
            _check_backend_names(values["backends"])
        # every value's type is checked (naming its key) by the constructor
        return cls(**values)


def _check_share_numbers(
    noise_multiplier: float,
    clip: float | None,
    expected_clients: int | None,
    record_level: bool,
    vector_bound: float | None,
    num_clients: int | None,
) -> None:
    """Refuse (ConfigurationError, one line) a noise share's numbers that no share has: a
    noise multiplier or clip that is not a positive finite number, a count below 1, a
    vector bound below the clip.

    Why: the floor compared ``noise_multiplier < min_noise_multiplier``, which NaN never
    is, so a branch with ``min_noise_multiplier = 1`` took a share of z = NaN (and of
    +inf); ``expected_clients = 0`` or ``-3`` passed, and a record-level share of clip NaN
    passed ``record_sensitivity`` (``NaN < 0.5`` is false). The masking spec's decoder
    and its mechanism refuse each, so this is the library's own callers' case (another
    backend's spec, a harness): the policy's checks hold whoever calls them (hostile
    policy review, 2026-12-07)."""

    def positive(name: str, value: object) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not _fits_float(value)  # 10**400: math.isfinite raised OverflowError
            or not (math.isfinite(value) and value > 0)
        ):
            raise ConfigurationError(
                f"a noise share's {name} is a positive finite number, not {_said(value)}"
            )

    positive("noise multiplier", noise_multiplier)
    if clip is not None:
        positive("clip", clip)
    elif record_level:
        raise ConfigurationError("a record-level noise share is sized for a clip, not None")
    if record_level and vector_bound is not None:
        positive("vector bound", vector_bound)
        if clip is not None and vector_bound < clip:
            raise ConfigurationError(
                f"a record-level noise share's vector bound {vector_bound:g} is below its "
                f"clip {clip:g}: the whole update is bounded by at least one unit's change"
            )
    for name, count in (("expected clients", expected_clients), ("round's clients", num_clients)):
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1
        ):
            raise ConfigurationError(
                f"a noise share's {name} is a count of 1 or more, not {_said(count)}"
            )


#: the most digits an integer a refusal names is written out with; a longer one is named
#: by its count of digits
_DIGITS_SHOWN = 40


def _said(value: Any) -> str:
    """``value`` for a one-line refusal: its repr cut at 40 characters, or, for an integer
    of more than 40 digits, its count of digits (``an integer of 401 digits``).

    Why not the repr cut for an integer too: 10**400 read ``1000...0`` in 40 digits, a
    number 360 digits shorter than the one given, and ``repr`` refuses an integer of more
    than 4 300 digits with a ValueError, which a refusal must not become (second policy
    review, 2026-12-07)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        digits = decimal_digits(int(value))
        if digits > _DIGITS_SHOWN:
            return f"an integer of {digits} digits"
        return str(int(value))
    try:
        return f"{value!r:.40}"
    except ValueError:  # a Fraction of such an integer
        return f"a number of {decimal_digits(int(value))} digits"


def _ckks_refused(others: list[str], pin: bytes | None, needs: str | None, cohort: int) -> str:
    """Why the CKKS rounds a policy allows are refused too (nothing if it allows none)."""
    if "ckks" not in others:
        return ""
    if pin is None:
        return ", and CKKS without a pinned key holder too"
    if cohort < 2:
        return ", and so would every CKKS round (a round of one is refused: its sum is one update)"
    return f", and CKKS rounds carry no noise share of this branch's own (branch.{needs})"


def _rounded_down(value: float) -> str:
    """``value`` at 3 significant digits, rounded down (a noise the round delivers)."""
    return shown(value, 3, significant=True, lower=True)


def _apart(
    value: float, bound: float, *, shown_value: Callable[[float], str] = "{:g}".format
) -> tuple[str, str]:
    """``value`` and the ``bound`` it broke as text that tells them apart: ``shown_value``
    and 6 significant digits, or both exactly (``repr``) where those read the same.

    Why: a refusal read ``noise multiplier 1 < 1`` for a server's z of 0.9999999999999999
    against a floor of 1 (and ``clip 1 > 1``, ``must be at most 10000, not 10000``): the
    comparison was right and its line contradicted itself (hostile policy review,
    2026-12-06)."""
    # as floats: a Fraction (a real number the checks take, below the floats' range
    # checks) has no "g" format before Python 3.12, and its refusal raised TypeError
    value, bound = float(value), float(bound)
    text, limit = shown_value(value), f"{bound:g}"
    if text == limit:
        return repr(float(value)), repr(float(bound))
    return text, limit


#: the number settings a larger value of makes a policy stricter (a number that is no
#: float is rounded up to one for these, down for the others: never a weaker policy)
STRICTER_WHEN_LARGER = (
    "min_noise_multiplier",
    "record_sensitivity",
    "corrupt_fraction",
    "dropout_fraction",
)


def _as_float(value: numbers.Real, *, up: bool) -> float:
    """``value`` as a float, the nearest one on the policy's safe side (``up``: at least
    ``value``) when it is a fraction no float holds exactly.

    Why stored as floats (and the counts as ints): a number of another type passed the
    type check and broke later, in the middle of a round. ``corrupt_fraction =
    np.float32(0.3)`` or ``Fraction(1, 10)`` built a policy whose every masking round
    then raised a ConfigurationError from the protocol's own policy (which takes ints
    and floats only), and ``min_noise_multiplier = Fraction(1, 2)`` a bare TypeError
    where a refusal formats it (hostile policy review, 2026-12-06).

    Any real type, not the rationals only: ``np.longdouble`` is a Real that is no
    Rational, and ``float()`` rounds it to nearest, so ``min_noise_multiplier = 1 +
    2^-63`` was held as 1.0 and took a round of z = 1 (second review, 2026-12-06). Such
    a type is compared with the float by its own (exact) comparison."""
    number = float(value)
    if not math.isfinite(number):
        return number  # refused by the range checks, which name the key
    if isinstance(value, numbers.Rational):
        exact, held = Fraction(value.numerator, value.denominator), Fraction(number)
        below, above = held < exact, held > exact
    else:
        below, above = bool(number < value), bool(number > value)
    if up and below:
        number = math.nextafter(number, math.inf)
    elif not up and above:
        number = math.nextafter(number, -math.inf)
    return number


def _fits_float(value: numbers.Real) -> bool:
    """Whether ``value`` converts to a float (an int past about 1.8e308 does not, and
    every range check compares as floats)."""
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _check_backend_names(names: tuple[object, ...]) -> None:
    """Each name of a ``[branch] backends`` list is a backend's, or a ConfigurationError
    naming the key, the name, and its likely spelling.

    Why: ``backends = ["cks"]`` (or ``"SecAgg+"``) was read as written, and the branch
    then refused every round of the backend it meant, one round at a time, as a round
    "weaker than its policy" (exit 3, an incident) instead of a mistake in its policy
    file (exit 2, before anything is dialled). Checked where a file is read; a policy
    built in code keeps any name (a name no spec carries only ever refuses)."""
    from secagg.aggregation.registry import BACKENDS  # the registry imports this module

    for name in names:
        if isinstance(name, str) and name not in BACKENDS:
            near = closest_spelling(name, BACKENDS)
            hint = f" (did you mean {near!r}?)" if near is not None else ""
            raise ConfigurationError(
                f"branch.backends: unknown backend {name!r:.40}{hint}; known: {', '.join(BACKENDS)}"
            )


def _suggestions(unknown: list[str], known: set[str]) -> str:
    """`` (did you mean 'max_clip'?)`` for one misspelt key, `` ('a': did you mean 'b'?;
    ...)`` for several; nothing when none is close.

    Why: ``max_clp`` in a branch's ``[branch]`` table was reported without a hint,
    unlike the federation config, and a misspelt policy key is a branch that does not
    start (review, 2026-12-05). The rule is every config reader's
    (:func:`~secagg.errors.closest_spelling`)."""
    hints = [
        (name, near) for name in unknown if (near := closest_spelling(name, known)) is not None
    ]
    if not hints:
        return ""
    if len(unknown) == 1:
        return f" (did you mean {hints[0][1]!r}?)"
    return " (" + "; ".join(f"{name!r}: did you mean {near!r}?" for name, near in hints) + ")"


def parse_fingerprint(text: object) -> bytes:
    """64 hex digits (the key holder prints them; ``:`` separators allowed)."""
    if not isinstance(text, str):
        raise ConfigurationError("branch.key_holder_fingerprint must be a string of hex digits")
    digits = text.replace(":", "").strip().lower()
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raise ConfigurationError(
            "branch.key_holder_fingerprint must be 64 hex digits (the key holder prints them)"
        ) from None
    if len(raw) != 32:
        raise ConfigurationError(
            "branch.key_holder_fingerprint must be 64 hex digits (the key holder prints them)"
        )
    return raw


__all__ = [
    "DEFAULT_BACKENDS",
    "FEDERATION_NAME_PATTERN",
    "MASKING_BACKENDS",
    "OWN_NOISE_KEYS",
    "STRICTER_WHEN_LARGER",
    "BranchPolicy",
    "parse_fingerprint",
]
