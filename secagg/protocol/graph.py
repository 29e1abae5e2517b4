"""Neighbour graphs: complete (SecAgg, 2017) or a random Harary graph (SecAgg+, 2020).

A client exchanges pairwise masks with, and Shamir-shares its secrets among,
its neighbours only. SecAgg+ (Bell et al., CCS 2020) uses the Harary graph
H(n, k): clients sit on a ring and each is joined to the k/2 nearest on either
side. The ring order is a uniformly random permutation drawn from a seed the
server announces in the setup message, so every client computes the same graph
and no party can place itself next to chosen victims once the seed is fixed. The
party that fixes the seed can, though: a server may grind seeds until a victim's
neighbours are its colluders. So the seed is trusted only where the server is
(passive variant); the active variant sizes t for the worst placement (see
:mod:`secagg.protocol.graph_params`), which makes the seed harmless.
The permutation is derived with a keyed cipher (AES-CTR under a key hashed from
the seed): sorting n pseudo-random 64-bit keys is a uniform permutation up to a
collision probability below n^2 / 2^64.

``degree`` (k) counts neighbours other than the client itself. Each client's
secrets are shared among its *holders*: its k neighbours and itself, as in
Bonawitz et al., where a client keeps one share of its own secrets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cached_property
from numbers import Integral

import numpy as np

from secagg.crypto.prg import expand_into
from secagg.errors import ConfigurationError
from secagg.protocol.messages import GRAPH_SEED_BYTES, GraphKind


class NeighbourGraph:
    """The undirected neighbour relation of one round, computable by every party."""

    def __init__(self, num_clients: int, kind: GraphKind, degree: int, seed: bytes) -> None:
        # types first: a str seed of 32 characters passed the length check and failed
        # as a TypeError at the first neighbourhood, and num_clients="5" in a comparison
        for name, value in (("num_clients", num_clients), ("degree", degree)):
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise ConfigurationError(f"{name} must be an integer, not {value!r}")
        if not isinstance(kind, GraphKind):
            raise ConfigurationError(f"the graph kind must be a GraphKind, not {kind!r}")
        if not isinstance(seed, bytes):
            raise ConfigurationError(f"graph seed must be bytes, not {type(seed).__name__}")
        if num_clients < 2:
            raise ConfigurationError("a round needs at least 2 clients")
        if len(seed) != GRAPH_SEED_BYTES:
            raise ConfigurationError(f"graph seed must be {GRAPH_SEED_BYTES} bytes")
        if kind == GraphKind.COMPLETE:
            if degree != num_clients - 1:
                raise ConfigurationError("a complete graph has degree num_clients - 1")
        else:
            if degree < 2 or degree % 2 or degree > num_clients - 1:
                # the largest even degree below n: "[2, 9]" for 10 clients named an odd
                # top the rule's own "even" excludes (degree n - 1 is GraphKind.COMPLETE)
                top = num_clients - 1 - (num_clients - 1) % 2
                rule = (
                    f"an even degree in [2, {top}]"
                    if top >= 2
                    else "no degree: use the complete graph"
                )
                raise ConfigurationError(
                    f"a Harary graph of {num_clients} clients needs {rule}, got {degree}"
                )
        self.num_clients = num_clients
        self.kind = kind
        self.degree = degree
        self.seed = seed
        # SecAgg+ neighbourhoods are asked for again and again (every message of a
        # phase names a party): k ints each, so keeping them all costs O(n k)
        self._neighbourhoods: dict[int, frozenset[int]] = {}

    @cached_property
    def _everyone(self) -> frozenset[int]:
        return frozenset(range(self.num_clients))

    @cached_property
    def _ring(self) -> tuple[np.ndarray, np.ndarray]:
        key = hashlib.sha256(b"secagg/v1/graph-permutation" + self.seed).digest()[:16]
        sort_keys = expand_into(key, np.empty(self.num_clients, dtype=np.uint64))
        order = np.argsort(sort_keys, kind="stable")  # order[position] = client
        position = np.empty_like(order)
        position[order] = np.arange(self.num_clients)
        return order, position

    def _check_party(self, party: object) -> int:
        """``party`` as an int, if it is an integer (numpy's too, not bool) in
        ``[0, num_clients)``; otherwise :class:`ConfigurationError` naming it."""
        if type(party) is not int and (isinstance(party, bool) or not isinstance(party, Integral)):
            raise ConfigurationError(f"a party is an integer id, not {party!r}")
        if not 0 <= party < self.num_clients:  # type: ignore[operator]
            raise ConfigurationError(f"party {party} is not in a round of {self.num_clients}")
        return int(party)  # type: ignore[call-overload]

    def _members(self, parties: Iterable[int]) -> np.ndarray:
        """``parties`` as an int64 array of ids in the round, or ConfigurationError."""
        listed = list(parties)
        if not all(type(p) is int for p in listed):  # the usual case skips the slow check
            listed = [self._check_party(p) for p in listed]
        try:
            members = np.fromiter(listed, dtype=np.int64, count=len(listed))
        except OverflowError:
            members = np.array([-1])  # beyond int64: out of range like any negative id
        if members.size and (members.min() < 0 or members.max() >= self.num_clients):
            raise ConfigurationError(f"parties must lie in 0..{self.num_clients - 1}")
        return members

    def neighbours(self, party: int) -> frozenset[int]:
        """The parties that ``party`` masks with (excluding itself).

        ``party`` is an integer id in the round (numpy's too, not bool): True was the
        cache's key 1 or a numpy broadcasting error, 1.5 a bare IndexError and "1" a bare
        TypeError."""
        party = self._check_party(party)
        if self.kind == GraphKind.COMPLETE or self.degree >= self.num_clients - 1:
            return self._everyone - {party}  # O(n) by nature; not kept (O(n^2) memory)
        known = self._neighbourhoods.get(party)
        if known is None:
            order, position = self._ring
            half = self.degree // 2
            offsets = np.concatenate([np.arange(1, half + 1), -np.arange(1, half + 1)])
            ring_positions = (position[party] + offsets) % self.num_clients
            known = frozenset(order[ring_positions].tolist())
            self._neighbourhoods[party] = known
        return known

    def holders(self, party: int) -> frozenset[int]:
        """The parties holding shares of ``party``'s secrets: its neighbours and itself."""
        return self.neighbours(party) | {party}

    def connects(self, parties: Iterable[int]) -> bool:
        """Whether ``parties`` form one connected piece of the graph (edges among them only).

        Why it matters: at unmasking the server learns the self-mask of every survivor
        and the mask key of every client that dropped, so the only masks it cannot
        remove are the pair masks between two survivors. If the survivors fall apart
        into pieces with no survivor-to-survivor edge between them, every piece's pair
        masks cancel inside it and the server can sum each piece alone: a partial sum
        of a few clients, not the sum of all (on a SecAgg+ ring, clients dropping in
        two runs of k/2 cut it). The complete graph always connects.

        On the ring, members sorted by position are joined to the next one when at
        most k/2 positions apart; the members are connected unless two or more
        consecutive pairs are further apart (one such gap leaves an arc, still a
        path). O(m log m) for m parties, without visiting any neighbourhood.

        Every party an integer id in the round (numpy's too, not bool): numpy's
        conversion read 1.5 as party 1, True as 1 and "1" as 1, and answered for parties
        nobody named; 2^70 was a bare OverflowError."""
        members = self._members(parties)
        if self.kind == GraphKind.COMPLETE or self.degree >= self.num_clients - 1:
            return True
        return self._places_connect(self._places(members))

    def _places(self, members: np.ndarray) -> np.ndarray:
        """The sorted ring positions of ``members``, duplicates once.

        Why not ``np.unique``: its hashing took 0.2 s for 90 000 survivors (n = 100 000),
        most of a connectivity check a client makes twice a round; a mark per position
        is O(n)."""
        marked = np.zeros(self.num_clients, dtype=bool)
        marked[self._ring[1][members]] = True
        return np.flatnonzero(marked)

    def _places_connect(self, places: np.ndarray) -> bool:
        """Whether the parties at sorted ring ``places`` are connected (see :meth:`connects`)."""
        if places.size <= 1:
            return True
        gaps = np.diff(places, append=places[0] + self.num_clients)
        return int(np.count_nonzero(gaps > self.degree // 2)) <= 1

    def connects_despite(self, parties: Iterable[int], colluders: int) -> bool:
        """Whether ``parties`` stay connected however ``colluders`` of them are left out.

        Why: a colluding survivor tells the server its pair seeds, so to the server the
        survivors are connected only through edges between two *honest* ones. When the
        survivors hang together only through colluders, the server sums each honest
        piece alone. In the active variant the server chooses whom to call dropped, so it
        can build that on purpose around wherever its colluders sit: at n = 20 (k = 8,
        t = 6, c = 2) one colluder left in each of two runs of k/2 kept every check
        passing and gave it the sums of two arcs of 6 inputs
        (tests/protocol/test_colluder_bridges.py). With ``colluders = 0`` this is
        :meth:`connects`.

        On the ring, leaving out parties disconnects the rest when two disjoint windows
        of k/2 consecutive positions hold no remaining party and remaining parties lie
        on both arcs between the windows. So the fewest parties whose removal cuts the
        rest is the least ``w(i) + w(j)`` over such pairs of windows, ``w`` counting the
        parties in a window; the party next to a window on each arc must stay, so for
        each first window the second starts in one range of positions, whose least
        ``w`` a sparse table answers: O(n log n) in numpy for a ring of n."""
        if isinstance(colluders, bool) or not isinstance(colluders, Integral) or colluders < 0:
            raise ConfigurationError(f"colluders must be a count >= 0, not {colluders!r}")
        members = self._members(parties)
        if self.kind == GraphKind.COMPLETE or self.degree >= self.num_clients - 1:
            return True  # every honest survivor joined to every other
        n, half = self.num_clients, self.degree // 2
        places = self._places(members)
        if not self._places_connect(places):
            return False
        # a cut keeps a party on each arc: of two parties, none can be left out
        if colluders == 0 or places.size <= 2:
            return True
        present = np.zeros(2 * n, dtype=np.int64)
        present[places] = 1
        present[places + n] = 1
        counts = np.concatenate(([0], np.cumsum(np.concatenate((present, present[:half])))))
        in_window = counts[half : half + 2 * n] - counts[: 2 * n]  # w(x), x in [0, 2n)
        # of two windows holding at most c parties, one holds at most c // 2, and each
        # pair is met from either window (the second is looked for on the unrolled
        # ring): so only such first windows are tried. An honest round's dropouts leave
        # none (review of da37b7f: an O(n) answer, the sparse table never built)
        starts = np.flatnonzero(in_window[:n] <= colluders // 2)
        if not starts.size:
            return True
        unrolled = np.concatenate((places, places + n, places + 2 * n))
        # the first and last party outside the window at i: on the two arcs
        first = unrolled[np.searchsorted(unrolled, starts + half, side="left")]
        last = unrolled[np.searchsorted(unrolled, starts + n - 1, side="right") - 1]
        low, high = first + 1, last - half  # where the second window may start
        usable = (first <= starts + n - 1) & (last >= starts + half) & (low <= high)
        if not usable.any():
            return True
        low, high, own = low[usable], high[usable], in_window[starts[usable]]
        least = _range_minima(in_window, low, high)
        return not bool(np.any(own + least <= colluders))


def _range_minima(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``min(values[low[q] : high[q] + 1])`` for every query q (``low <= high``), from a
    sparse table of minima over power-of-two spans: O(len(values) log len(values))."""
    table = [values]
    while 2 ** len(table) <= len(values):
        previous, span = table[-1], 2 ** (len(table) - 1)
        table.append(np.minimum(previous[:-span], previous[span:]))
    level = np.floor(np.log2(high - low + 1)).astype(np.int64)
    least = np.empty(len(low), dtype=values.dtype)
    for k in np.unique(level):
        chosen = level == k
        row = table[int(k)]
        least[chosen] = np.minimum(row[low[chosen]], row[high[chosen] - 2 ** int(k) + 1])
    return least
