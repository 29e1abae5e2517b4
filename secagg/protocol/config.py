"""Round parameters and their defaults.

One :class:`RoundConfig` describes a round: how many clients, how long the
vector, the bit width of Z_{2^b}, the neighbour graph and the Shamir threshold.
:meth:`RoundConfig.create` fills in what the caller leaves out the way SecAgg+
does: from the number of clients and the tolerated fractions of dropped
(``dropout_fraction``) and corrupt (``corrupt_fraction``) clients, via Google's
Harary-graph parameter search (see :mod:`secagg.protocol.graph_params`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from secagg.errors import ConfigurationError
from secagg.protocol import graph_params
from secagg.protocol.messages import GraphKind

DEFAULT_DROPOUT_FRACTION = 0.10
DEFAULT_CORRUPT_FRACTION = 0.05
GraphName = Literal["harary", "complete"]


@dataclass(frozen=True)
class RoundConfig:
    num_clients: int
    vector_length: int
    bits: int
    graph: GraphKind
    degree: int
    threshold: int
    active: bool = False

    def __post_init__(self) -> None:
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
                f"a Harary graph needs an even degree k in [2, {self.num_clients - 1}], "
                f"got {self.degree}"
            )
        if not 1 <= self.threshold <= self.degree + 1:
            raise ConfigurationError(
                f"threshold must be in [1, k + 1 = {self.degree + 1}] (k neighbours plus the "
                f"client itself hold shares), got {self.threshold}"
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
    ) -> RoundConfig:
        """Build a config, choosing k and t like SecAgg+ where they are not given.

        * ``graph="complete"``: k = n - 1; t defaults to the complete-graph rule
          (as high as the tolerated dropout allows, above the corrupt fraction).
        * ``graph="harary"``: k and t default to the smallest k whose random Harary
          graph keeps the honest survivors connected, and the matching t, for the
          stated fractions (falls back to the complete graph when no k < n works).
          A caller-supplied k without t gets t = floor((k+1)/2) + 1, a majority
          of the k + 1 share holders.
        """
        if graph not in ("harary", "complete"):
            raise ConfigurationError(f"graph must be 'harary' or 'complete', not {graph!r}")
        if num_clients < 2:
            raise ConfigurationError("a secure aggregation round needs at least 2 clients")
        semi_malicious = active
        kind = GraphKind.HARARY if graph == "harary" else GraphKind.COMPLETE
        if kind == GraphKind.HARARY and k is None:
            found = graph_params.harary_parameters(
                num_clients,
                corrupt_fraction=corrupt_fraction,
                dropout_fraction=dropout_fraction,
                semi_malicious=semi_malicious,
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
                threshold = graph_params.complete_graph_threshold(
                    num_clients,
                    corrupt_fraction=corrupt_fraction,
                    dropout_fraction=dropout_fraction,
                    semi_malicious=semi_malicious,
                )
        assert k is not None
        if threshold is None:
            threshold = min(k + 1, (k + 1) // 2 + 1)
        return cls(num_clients, vector_length, bits, kind, k, threshold, active)
