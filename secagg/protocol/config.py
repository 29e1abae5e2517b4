"""Round parameters, their defaults, and each client's own policy.

One :class:`RoundConfig` describes a round: how many clients, how long the
vector, the bit width of Z_{2^b}, the neighbour graph and the Shamir threshold.
:meth:`RoundConfig.create` fills in what the caller leaves out the way SecAgg+
does: from the number of clients and the tolerated fractions of dropped
(``dropout_fraction``) and corrupt (``corrupt_fraction``) clients, via Google's
Harary-graph parameter search (see :mod:`secagg.protocol.graph_params`), with
two additions: every round is sized for at least ``min_colluders`` colluding
clients (small cohorts), and the active variant is sized for colluders placed
anywhere on the ring (the server chooses the graph seed).

The server sends the round's parameters in ``RoundSetup``; a client must not
take them on trust, because they are exactly what its privacy rests on. So
every client holds a :class:`ClientPolicy` and computes *itself* the weakest
setup it accepts (security review C1, L2, L3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from numbers import Integral, Real
from typing import Literal

from secagg.errors import ConfigurationError, PolicyRefused
from secagg.protocol import graph_params
from secagg.protocol.graph_params import (
    DEFAULT_CORRUPT_FRACTION,
    DEFAULT_DROPOUT_FRACTION,
    DEFAULT_MIN_COLLUDERS,
)
from secagg.protocol.messages import GraphKind, RoundSetup

#: Largest round a client joins unless told otherwise: building the neighbour
#: graph and the share bookkeeping of a 2**32-client round would exhaust memory.
DEFAULT_MAX_CLIENTS = 100_000
GraphName = Literal["harary", "complete"]

__all__ = [
    "DEFAULT_CORRUPT_FRACTION",
    "DEFAULT_DROPOUT_FRACTION",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_MIN_COLLUDERS",
    "ClientPolicy",
    "RoundConfig",
]


def harary_degree_rule(num_clients: int) -> str:
    """The degrees a round of ``num_clients`` accepts for a Harary graph, in words: an
    even k from 2 up to the largest even number below ``num_clients - 1``, or
    ``num_clients - 1`` itself, which reaches every other client (the complete graph).

    Why: the refusal read "needs an even degree k in [2, 9]" for 10 clients, whose top
    is odd: k = 9 runs (as the complete graph) while k = 7 is refused, so the bound
    named a k the rule's own "even" excludes (review, 2026-12-06)."""
    complete = f"k = {num_clients - 1} = clients - 1 (the complete graph)"
    top = num_clients - 2 if num_clients % 2 == 0 else num_clients - 3  # even, < n - 1
    if top < 2:  # 2 or 3 clients: the complete graph is the only one
        return complete
    evens = "an even degree k = 2" if top == 2 else f"an even degree k in [2, {top}]"
    return f"{evens} or {complete}"


@dataclass(frozen=True)
class RoundConfig:
    """One round's public parameters, plus the assumptions they were sized for.

    ``corrupt_fraction``, ``dropout_fraction`` and ``min_colluders`` are not
    sent to the clients (each client has its own, in its :class:`ClientPolicy`);
    they are kept so the configuration says what it was sized for.

    ``population``: the clients the round was drawn from (None: the round is the
    population). It is sent (``RoundSetup.population``): k and t are sized for the
    colluders of the whole population, every one of which the server that draws the
    round may put in it (:func:`~secagg.protocol.graph_params.colluder_floor`), and each
    client counts them itself from its own policy.
    """

    num_clients: int
    vector_length: int
    bits: int
    graph: GraphKind
    degree: int
    threshold: int
    active: bool = False
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION
    min_colluders: int = DEFAULT_MIN_COLLUDERS
    population: int | None = None

    def __post_init__(self) -> None:
        self._check_types()
        if self.num_clients < 2:
            raise ConfigurationError("a secure aggregation round needs at least 2 clients")
        if self.vector_length < 1:
            raise ConfigurationError("vector_length must be positive")
        if self.bits not in (32, 64):
            raise ConfigurationError(f"bits must be 32 or 64, not {self.bits}")
        if self.graph == GraphKind.COMPLETE and self.degree != self.num_clients - 1:
            raise ConfigurationError("the complete graph has degree num_clients - 1")
        if self.graph == GraphKind.HARARY and (
            self.degree < 2 or self.degree % 2 or self.degree > self.num_clients - 1
        ):
            raise ConfigurationError(
                f"a Harary graph of {self.num_clients} clients needs "
                f"{harary_degree_rule(self.num_clients)}, got {self.degree}"
            )
        if not 1 <= self.threshold <= self.degree + 1:
            raise ConfigurationError(
                f"threshold must be in [1, k + 1 = {self.degree + 1}] (k neighbours plus the "
                f"client itself hold shares), got {self.threshold}"
            )
        self._check_population()  # last: its refusal reads the round's checked size

    def _check_types(self) -> None:
        """Each public field's type, naming the field; numpy integers become ints.

        Why: the range checks below compare, so ``num_clients="5"`` failed as a
        TypeError, and ``vector_length=1.5``, ``bits=32.0``, ``threshold=True`` (t = 1),
        ``graph="harary"`` and ``active="yes"`` passed into a round whose messages and
        arithmetic expect ints, a GraphKind and a bool."""
        for name in ("num_clients", "vector_length", "bits", "degree", "threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise ConfigurationError(f"{name} must be an integer, not {value!r}")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.graph, GraphKind):
            raise ConfigurationError(f"graph must be a GraphKind, not {self.graph!r}")
        if not isinstance(self.active, bool):
            raise ConfigurationError(f"active must be True or False, not {self.active!r}")

    def _check_population(self) -> None:
        """The population: None, or an int from the round's size up to the largest
        cohort the search sizes, whose colluders leave the round an honest pair.

        Why refused here and not only in :meth:`create`: a config built directly (a
        caller's k and t) is sent as it is, and a population whose colluders may fill
        the round but one has no private threshold at all."""
        population = self.population
        if population is None:
            return
        if isinstance(population, bool) or not isinstance(population, Integral):
            raise ConfigurationError(f"population must be an integer or None, not {population!r}")
        population = int(population)
        object.__setattr__(self, "population", population)
        _check_population_range(self.num_clients, population)
        _sized_floor(self.num_clients, population, self.corrupt_fraction, self.min_colluders)

    @property
    def sized_min_colluders(self) -> int:
        """The colluder floor this round's k and t were sized with: ``min_colluders``,
        raised to the colluders of its population (all of them may be in the round)."""
        return _sized_floor(
            self.num_clients, self.population, self.corrupt_fraction, self.min_colluders
        )

    @property
    def colluders(self) -> int:
        """The colluders this round is sized for, in absolute numbers: the corrupt
        fraction of ``max(round, population)``, at least ``min_colluders`` (up to n - 2)."""
        return graph_params.tolerated_colluders(
            self.num_clients, self.corrupt_fraction, self.sized_min_colluders
        )

    @property
    def tolerated_colluders(self) -> int:
        """How many clients may collude with the server, in absolute numbers.

        The largest ``c`` for which a client with ``ClientPolicy(corrupt_fraction=0,
        min_colluders=c)`` and this config's dropout fraction accepts this round:
        colluders placed uniformly at random on the ring in the passive variant
        (the server shuffles it honestly), anywhere in the active one. -1 means
        not even zero: the round is weaker than any client policy accepts (for
        example a caller-chosen ``t = 1``).
        """
        return graph_params.colluders_tolerated_by(
            self.num_clients,
            self.degree,
            self.threshold,
            semi_malicious=self.active,
            dropout_fraction=self.dropout_fraction,
        )

    @classmethod
    def create(
        cls,
        num_clients: int,
        vector_length: int,
        *,
        bits: int = 32,
        graph: GraphName = "harary",
        k: int | None = None,
        threshold: int | None = None,
        active: bool = False,
        dropout_fraction: float = DEFAULT_DROPOUT_FRACTION,
        corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION,
        min_colluders: int = DEFAULT_MIN_COLLUDERS,
        population: int | None = None,
    ) -> RoundConfig:
        """Build a config, choosing k and t like SecAgg+ where they are not given.

        Sized for ``c = max(floor(corrupt_fraction * max(n, population)),
        min(min_colluders, n - 2))`` colluders
        (:func:`~secagg.protocol.graph_params.tolerated_colluders` with the floor of
        :func:`~secagg.protocol.graph_params.colluder_floor`): a round drawn from a
        population of ``population`` clients may hold all of its colluders. When they
        may fill the round but one (``c >= n - 1``), no k or t is private and the
        round is refused (``ConfigurationError`` naming the numbers):

        * ``graph="complete"``: k = n - 1; t defaults to fcp's complete-graph rule
          (as high as the tolerated dropout allows, above the corrupt clients),
          at least ``c + 1``, and with ``active`` at least ``floor((n + c) / 2) + 1``.
        * ``graph="harary"``: k and t default to the smallest k whose random Harary
          graph keeps the honest survivors connected, and the matching t
          (:func:`~secagg.protocol.graph_params.sized_harary_parameters`; with
          ``active`` sized so that ``2t > k + 1 + c`` and ``k > c``). Falls back to
          the complete graph when no k < n - 1 works.
        * A caller-supplied k without t gets a majority of the k + 1 share
          holders, with ``active`` at least ``floor((k + 1 + c) / 2) + 1``
          (capped at k + 1).

        The defaults always pass the check of a :class:`ClientPolicy` with the
        same fractions; caller-chosen k and t may not (research only).
        """
        if graph not in ("harary", "complete"):
            raise ConfigurationError(f"graph must be 'harary' or 'complete', not {graph!r}")
        # types first (naming the argument): the comparisons below raised a bare
        # TypeError for num_clients="5" or k="4"
        for name, value in (
            ("num_clients", num_clients),
            ("k", k),
            ("threshold", threshold),
            ("min_colluders", min_colluders),
        ):
            if value is None and name in ("k", "threshold"):
                continue
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise ConfigurationError(f"{name} must be an integer, not {value!r}")
        for name, value in (
            ("dropout_fraction", dropout_fraction),
            ("corrupt_fraction", corrupt_fraction),
        ):
            if isinstance(value, bool) or not isinstance(value, Real):
                raise ConfigurationError(f"{name} must be a number, not {value!r}")
        if num_clients < 2:
            raise ConfigurationError("a secure aggregation round needs at least 2 clients")
        if population is not None and (
            isinstance(population, bool) or not isinstance(population, Integral)
        ):
            raise ConfigurationError(f"population must be an integer or None, not {population!r}")
        if population is not None:  # before the colluders are counted over it
            _check_population_range(num_clients, int(population))
        sized_floor = _sized_floor(num_clients, population, corrupt_fraction, min_colluders)
        colluders = graph_params.tolerated_colluders(num_clients, corrupt_fraction, sized_floor)
        kind = GraphKind.HARARY if graph == "harary" else GraphKind.COMPLETE
        if kind == GraphKind.HARARY and k is None:
            found = graph_params.sized_harary_parameters(
                num_clients,
                corrupt_fraction=corrupt_fraction,
                dropout_fraction=dropout_fraction,
                semi_malicious=active,
                min_colluders=sized_floor,
            )
            if found is None or found.k >= num_clients - 1:
                kind = GraphKind.COMPLETE
            else:
                k = found.k
                if threshold is None:
                    threshold = found.threshold
        if kind == GraphKind.HARARY and k is not None and k >= num_clients - 1:
            kind = GraphKind.COMPLETE
        if kind == GraphKind.COMPLETE:
            if k is not None and k != num_clients - 1 and graph == "complete":
                raise ConfigurationError("the complete graph has k = num_clients - 1")
            k = num_clients - 1
            if threshold is None:
                threshold = max(
                    graph_params.complete_graph_threshold(
                        num_clients,
                        corrupt_fraction=corrupt_fraction,
                        dropout_fraction=dropout_fraction,
                        semi_malicious=active,
                    ),
                    colluders + 1,
                )
                if active:
                    threshold = max(threshold, graph_params.worst_case_threshold(k, colluders))
        assert k is not None
        if threshold is None:
            threshold = (k + 1) // 2 + 1
            if active:
                threshold = max(threshold, graph_params.worst_case_threshold(k, colluders))
            threshold = min(k + 1, threshold)
        return cls(
            num_clients,
            vector_length,
            bits,
            kind,
            k,
            threshold,
            active,
            float(corrupt_fraction),
            float(dropout_fraction),
            int(min_colluders),
            None if population is None else int(population),
        )


def _sized_floor(
    num_clients: int, population: int | None, corrupt_fraction: float, min_colluders: int
) -> int:
    """:func:`graph_params.colluder_floor`, or a ConfigurationError naming the numbers
    when the population's colluders may fill the round but one."""
    floor = graph_params.colluder_floor(num_clients, population, corrupt_fraction, min_colluders)
    if floor is None:
        assert population is not None  # a round that is its population is never refused so
        packed = graph_params.population_colluders(num_clients, population, corrupt_fraction)
        raise ConfigurationError(
            f"a round of {num_clients} clients drawn from a population of {population} "
            f"(corrupt_fraction = {corrupt_fraction}: {packed} colluders, all of whom the "
            f"server that draws the round may put in it) has no private threshold: with "
            f"{num_clients - 1} or more colluders in it the sum alone reveals the last honest "
            f"input; {_population_hint(num_clients, population, packed)}"
        )
    return floor


def _check_population_range(num_clients: int, population: int) -> None:
    """Refuse a population below the round or above the largest cohort the search
    sizes (:data:`graph_params.MAX_NUM_CLIENTS`), naming the range.

    Why in :meth:`RoundConfig.create` too, before the colluders are counted: a
    population of 2 000 000 was refused for its colluders first, with the hint to
    draw rounds of 1 000 002 clients, more than any round or population may have."""
    if not num_clients <= population <= graph_params.MAX_NUM_CLIENTS:
        raise ConfigurationError(
            f"population must lie in [num_clients = {num_clients}, "
            f"{graph_params.MAX_NUM_CLIENTS}] (the clients a round is drawn from), "
            f"got {population}"
        )


def _population_hint(num_clients: int, population: int, packed: int) -> str:
    """What passes instead of a round of ``num_clients`` drawn from ``population`` whose
    ``packed`` colluders may fill it but one: the smallest round drawn from the same
    population that leaves two honest clients, where the population has one (a round
    larger than its population is none), and the largest corrupt fraction the refused
    round takes.

    Why: the refusal said "draw rounds of at least ``packed + 2`` clients" whatever
    the population: 11 for a population of 10 at 90 %, where no round of it, the whole
    population too, holds two honest clients."""
    lowered = f"lower the corrupt fraction to at most {_largest_fraction(num_clients, population)}"
    smallest = packed + 2
    if smallest < population:
        return f"draw rounds of at least {smallest} clients, or {lowered}"
    if smallest == population:
        return f"draw rounds of {population} clients (the whole population), or {lowered}"
    return (
        f"its {packed} colluders leave the population fewer than 2 honest clients, so no "
        f"round drawn from it has one: {lowered}"
    )


def _largest_fraction(num_clients: int, population: int) -> str:
    """The largest corrupt fraction, to 3 significant digits and rounded down, whose
    colluders over ``population`` (:func:`graph_params.population_colluders`) leave a
    round of ``num_clients`` two honest clients; checked against that count, so the
    fraction shown always passes (the count nudges the fraction up by 1e-14)."""
    allowed = num_clients - 2
    exact = Decimal(allowed) / Decimal(population)
    if exact == 0:
        return "0"
    step = Decimal(1).scaleb(exact.adjusted() - 2)
    shown = exact.quantize(step, rounding=ROUND_FLOOR)
    while (
        shown > 0
        and graph_params.population_colluders(num_clients, population, float(shown)) > allowed
    ):
        shown -= step
    return f"{float(shown):g}"


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < 1:
        raise ConfigurationError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class ClientPolicy:
    """The weakest round a client takes part in, held by the client (never sent).

    fcp configures the equivalent on its client too (``SecAggClient(
    max_clients_expected, minimum_surviving_clients_for_reconstruction, ...)``).
    :meth:`check` runs on every ``RoundSetup`` before anything is generated or
    stored; a setup weaker than the policy raises
    :class:`~secagg.errors.PolicyRefused` whose ``setting`` is one of:

    * ``"max_clients"``: more than ``max_clients`` clients (bounds the memory a
      server can make the client spend on the graph and the shares);
    * ``"expected_clients"``: more clients than ``expected_clients``, fcp's
      ``max_clients_expected``. The rule is strict (no tolerance above it):
      every client a server adds beyond the cohort the client was told about
      can only be one the server made up, i.e. a colluder the fractions did not
      count. Fewer clients than expected are fine (dropouts happen; the
      threshold still holds);
    * ``"require_active"``: a passive (``active=False``) setup although the
      policy, or the client's configured signing and identity keys, ask for
      the active variant;
    * ``"min_threshold"``: t below the absolute floor ``min_threshold``;
    * ``"min_colluders"``, ``"corrupt_fraction"`` or ``"dropout_fraction"``: a
      degree k that no threshold makes private, or a t below the minimum the client
      computed itself with :func:`~secagg.protocol.graph_params.minimum_threshold`
      from those three assumptions. The refusal names the assumption that refused
      the round (:meth:`refusing_key`): the one that, alone relaxed to 0, would
      have let it through; ``expected_clients`` when it is the population whose
      colluders refuse a round sized for its own; ``corrupt_fraction`` when no single
      one would.

    ``check_parameters=False`` skips the checks sized for the policy's colluders: the
    minimum threshold, and (active variant) leaving its colluders out of the survivors'
    connectivity check (``NeighbourGraph.connects_despite``, which a caller-chosen
    k <= c fails without any dropout). For simulations in which the caller plays every
    role and picks k and t itself. A deployed client never needs it.

    ``keys``: the prefix of the config keys this policy was read from, put before
    every setting a refusal names (each is such a key) so a refusal names the key an
    operator sets: a federation branch's policy is its ``[branch]`` table, so its
    refusal says ``branch.min_threshold`` or ``branch.corrupt_fraction`` as its other
    refusals say ``branch.max_clip`` (they said ``min_threshold``, and the round's
    parameters ``degree`` and ``threshold``, which no operator sets). The
    :class:`~secagg.errors.ConfigurationError` for a bad value names its key with the
    same prefix (``branch.min_colluders must be an int >= 0``).
    """

    require_active: bool = False
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION
    min_colluders: int = DEFAULT_MIN_COLLUDERS
    min_threshold: int | None = None
    max_clients: int = DEFAULT_MAX_CLIENTS
    expected_clients: int | None = None
    check_parameters: bool = True
    keys: str = ""

    def __post_init__(self) -> None:
        # The prefix is checked first: every other error names its key with it, so a
        # branch's mistake reads ``branch.min_colluders must be ...`` like its refusals.
        if not isinstance(self.keys, str):
            raise ConfigurationError(f"keys must be a config key prefix (str), got {self.keys!r}")
        for name in ("require_active", "check_parameters"):
            if not isinstance(getattr(self, name), bool):  # "no" is truthy
                raise ConfigurationError(
                    f"{self.keys}{name} must be true or false, got {getattr(self, name)!r}"
                )
        for name in ("corrupt_fraction", "dropout_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"{self.keys}{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and 0 <= value < 1):
                raise ConfigurationError(f"{self.keys}{name} must lie in [0, 1), got {value!r}")
        if (
            isinstance(self.min_colluders, bool)
            or not isinstance(self.min_colluders, Integral)
            or self.min_colluders < 0
        ):
            raise ConfigurationError(
                f"{self.keys}min_colluders must be an int >= 0, got {self.min_colluders!r}"
            )
        _positive_int(f"{self.keys}max_clients", self.max_clients)
        for name in ("min_threshold", "expected_clients"):
            if getattr(self, name) is not None:
                _positive_int(f"{self.keys}{name}", getattr(self, name))

    def population(self, num_clients: int, announced: int = 0) -> int:
        """The population whose colluders this policy counts in a round of
        ``num_clients``: the largest of the round, ``expected_clients`` and the
        population the server ``announced`` (``RoundSetup.population``; 0: none).

        Why the largest: the server draws the round, so every colluder of the cohort
        the client was told about, or of the one the server itself names, may be in it
        (a round of 20 from 100 at 5 %: 5 colluders, not the round's own 1 or the
        floor's 2; review of colluders, 2026-12-07). A larger announcement only makes
        the client stricter, and a smaller one than ``expected_clients`` is refused
        (:meth:`check`)."""
        return max(int(num_clients), int(announced), self.expected_clients or 0)

    def _floor(self, num_clients: int, announced: int) -> int | None:
        """The colluder floor of :func:`graph_params.colluder_floor` for this policy's
        population; None when its colluders may fill the round but one."""
        population = self.population(num_clients, announced)
        return graph_params.colluder_floor(
            num_clients,
            population if population > num_clients else None,
            float(self.corrupt_fraction),
            int(self.min_colluders),
        )

    def colluders(self, num_clients: int, announced: int = 0) -> int:
        """The colluders this policy assumes in a round of ``num_clients``, in absolute
        numbers: its corrupt fraction of :meth:`population`, at least ``min_colluders``
        (up to n - 2); the population's whole count when that fills the round but one."""
        floor = self._floor(num_clients, announced)
        if floor is None:
            return graph_params.population_colluders(
                num_clients, self.population(num_clients, announced), self.corrupt_fraction
            )
        return graph_params.tolerated_colluders(num_clients, self.corrupt_fraction, floor)

    def minimum_threshold(
        self,
        num_clients: int,
        graph: GraphKind,
        degree: int,
        *,
        active: bool,
        announced: int = 0,
    ) -> int | None:
        """The smallest t this policy accepts for the graph, or None if none is safe;
        ``announced``: the population the setup names (its colluders are counted)."""
        floor = self._floor(num_clients, announced)
        if floor is None:
            return None
        return graph_params.minimum_threshold(
            num_clients,
            num_clients - 1 if graph == GraphKind.COMPLETE else degree,
            semi_malicious=active,
            corrupt_fraction=float(self.corrupt_fraction),
            dropout_fraction=float(self.dropout_fraction),
            min_colluders=floor,
        )

    def check(self, setup: RoundSetup, *, keys_configured: bool = False) -> None:
        """Refuse a setup weaker than this policy; changes nothing either way.

        ``keys_configured``: the client holds a signing key and its peers'
        identity keys, so it was built for the active variant and a passive
        setup is a downgrade (security review C1(c)). Size checks come first,
        so a huge ``num_clients`` is refused before anything is computed for it.
        The graph parameters themselves (degree range, t <= k + 1) are the
        client's :class:`~secagg.errors.InvalidMessage` checks; this method
        assumes them.
        """
        n = setup.num_clients
        if n > self.max_clients:
            raise PolicyRefused(
                f"{self.keys}max_clients",
                f"a round of {n} clients; this client joins at most {self.max_clients}",
            )
        if self.expected_clients is not None and n > self.expected_clients:
            raise PolicyRefused(
                f"{self.keys}expected_clients",
                f"a round of {n} clients; this client expects at most {self.expected_clients}",
            )
        if (self.require_active or keys_configured) and not setup.active:
            raise PolicyRefused(
                f"{self.keys}require_active",
                "the server asked for the passive variant; this client runs only the active "
                "one (signed keys and a signed survivor set)",
            )
        if self.min_threshold is not None and setup.threshold < self.min_threshold:
            raise PolicyRefused(
                f"{self.keys}min_threshold",
                f"threshold {setup.threshold} is below this client's floor of {self.min_threshold}",
            )
        if not self.check_parameters:
            return
        self._refuse_a_smaller_population(setup)
        minimum = self.minimum_threshold(
            n, setup.graph, setup.degree, active=setup.active, announced=setup.population
        )
        if minimum is not None and setup.threshold >= minimum:
            return
        colluders = self.colluders(n, setup.population)
        cohort = self.population(n, setup.population)
        drawn = f", drawn from a population of {cohort}" if cohort > n else ""
        if drawn and cohort == self.expected_clients:
            drawn += f" ({self.keys}expected_clients)"
        variant = "active" if setup.active else "passive"
        assumptions = (
            f"{self.keys}corrupt_fraction = {self.corrupt_fraction}, "
            f"{self.keys}min_colluders = {self.min_colluders}, "
            f"{self.keys}dropout_fraction = {self.dropout_fraction}"
        )
        if minimum is None:
            raise PolicyRefused(
                self.refusing_key(setup),
                f"no threshold keeps a round of {n} clients{drawn} ({variant} variant, degree "
                f"{setup.degree}) private against {colluders} colluding clients and "
                f"{self.dropout_fraction:.0%} dropouts ({assumptions})",
            )
        raise PolicyRefused(
            self.refusing_key(setup),
            f"threshold {setup.threshold} is below the {minimum} this client requires for a "
            f"round of {n} clients{drawn} ({variant} variant, degree {setup.degree}, "
            f"{colluders} colluding clients tolerated; {assumptions})",
        )

    def _refuse_a_smaller_population(self, setup: RoundSetup) -> None:
        """Refuse a setup that names a population whose colluders (at this policy's
        corrupt fraction) are fewer than those of the ``expected_clients`` it was told
        about: the server claims a smaller federation than this client knows of.

        Why, although the minimum threshold already counts the expected cohort: the
        refusal then names the cause (``expected_clients``, the population announced)
        instead of a threshold, and nothing of a round whose very sizing contradicts the
        client's own view is taken. Fewer clients than expected are fine while they
        imply no fewer colluders (a round of 12 from an expected 20 at 5 %: 2 either
        way); a round of 20 announced as its own population, from an expected 100 at
        5 % (5 colluders, where the round's 20 imply 2), is refused."""
        n = setup.num_clients
        if self.expected_clients is None or self.expected_clients <= max(n, setup.population):
            return
        told = replace(self, expected_clients=None).colluders(n, setup.population)
        own = self.colluders(n, setup.population)
        if told >= own:
            return
        drawn = max(n, setup.population)
        raise PolicyRefused(
            f"{self.keys}expected_clients",
            f"the round of {n} clients names a population of {drawn} ({told} colluders at "
            f"{self.keys}corrupt_fraction = {self.corrupt_fraction}, {self.keys}min_colluders = "
            f"{self.min_colluders}); this client expects {self.expected_clients} clients, "
            f"{own} colluders, every one of whom the server that draws the round may put "
            "in it",
        )

    def accepts_parameters(self, setup: RoundSetup) -> bool:
        """Whether ``setup``'s degree and threshold meet this policy's minimum."""
        minimum = self.minimum_threshold(
            setup.num_clients,
            setup.graph,
            setup.degree,
            active=setup.active,
            announced=setup.population,
        )
        return minimum is not None and setup.threshold >= minimum

    def refusing_key(self, setup: RoundSetup) -> str:
        """The config key (with :attr:`keys`) of the assumption that refuses ``setup``'s
        degree or threshold.

        Why: the refusal should send an operator to the setting that decided it, as
        every other refusal does, not to the round's ``threshold``, which is the
        server's. The minimum t follows from three assumptions at once; the one named
        is the first of ``min_colluders``, ``corrupt_fraction``, ``dropout_fraction``
        that, alone set to 0, would accept the round (``min_colluders`` first: in a
        small cohort its floor, not the fraction, sets the colluders). When none alone
        would, the colluders' fraction is named, the assumption the threshold exists
        for. Pure: it builds relaxed copies and changes nothing.

        ``expected_clients`` is named (after ``min_colluders``) when it is the population
        whose colluders refuse the round: the round sized for its own colluders would
        pass, and the branch's expected cohort is at least the population the server
        announced. It named ``corrupt_fraction`` (second review of colluders,
        2026-12-07): a branch expecting 100 clients refused an active round of 20 at
        k = 8, t = 6 for the 5 colluders of its 100, and was sent to lower its corrupt
        fraction, where the cause was the population it set."""
        names = ("min_colluders", "expected_clients", "corrupt_fraction", "dropout_fraction")
        for name in names:
            if name == "expected_clients":
                if self._population_refuses(setup):
                    return f"{self.keys}expected_clients"
            elif getattr(self, name) and replace(self, **{name: 0}).accepts_parameters(setup):
                return f"{self.keys}{name}"
        return f"{self.keys}corrupt_fraction"

    def _population_refuses(self, setup: RoundSetup) -> bool:
        """Whether this policy's ``expected_clients`` is the population that refuses
        ``setup``: it is larger than the round and no smaller than the population the
        server announced, and the round counted as its own population would pass."""
        expected = self.expected_clients
        if expected is None or expected <= setup.num_clients or expected < setup.population:
            return False
        own_round = replace(self, expected_clients=None)
        return own_round.accepts_parameters(replace(setup, population=0))
