"""An in-memory driver for one round: every client, the server, and chosen dropouts.

Used by the tests, by research code and by the benchmarks. It drives the very
same :class:`~secagg.protocol.client.Client` and
:class:`~secagg.protocol.server.Server` objects a network transport drives, and
passes every message through the binary codec, so what is simulated is what
runs in deployment minus the sockets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from secagg.crypto.signing import SigningKey
from secagg.crypto.stream import derive
from secagg.errors import ConfigurationError, RoundAborted
from secagg.protocol.client import Client
from secagg.protocol.config import (
    DEFAULT_CORRUPT_FRACTION,
    DEFAULT_DROPOUT_FRACTION,
    ClientPolicy,
    RoundConfig,
)
from secagg.protocol.messages import (
    ConsistencyRequest,
    KeyDirectory,
    Message,
    RoundAbort,
    RoundSetup,
    ServerMessage,
    ShareDelivery,
    UnmaskingRequest,
    decode,
    encode,
)
from secagg.protocol.server import RoundReport, Server, ServerPhase

#: Phase names accepted in ``dropped``, in protocol order: a client listed under
#: a phase vanishes before sending that phase's message.
PHASES = ("advertise_keys", "share_keys", "masked_input", "consistency_check", "unmasking")

_REPLY_PHASE: dict[type[Message], str] = {
    RoundSetup: "advertise_keys",
    KeyDirectory: "share_keys",
    ShareDelivery: "masked_input",
    ConsistencyRequest: "consistency_check",
    UnmaskingRequest: "unmasking",
}


@dataclass(frozen=True)
class RoundOutcome:
    """The sum and the server's report of who took part."""

    total: np.ndarray
    report: RoundReport


def _wire(message: Message) -> Message:
    return decode(encode(message))


def _vanish_index(dropped: Mapping[str, Iterable[int]] | None, n: int) -> dict[int, int]:
    """Each dropped client's phase index. Checked by name: a list (not a mapping) raised
    AttributeError, a bare int or str TypeError or ValueError, and ``int(party)``
    made ``1.5`` client 1 and ``True`` client 1."""
    if dropped is not None and not isinstance(dropped, Mapping):
        raise ConfigurationError(
            f"dropped maps a phase name to client indices, not {type(dropped).__name__}"
        )
    vanish: dict[int, int] = {}
    for phase, parties in (dropped or {}).items():
        if phase not in PHASES:
            raise ConfigurationError(f"unknown phase {phase!r}; expected one of {PHASES}")
        if isinstance(parties, str | bytes) or not isinstance(parties, Iterable):
            raise ConfigurationError(
                f"dropped[{phase!r}] must be a collection of client indices, not {parties!r}"
            )
        for party in parties:
            if isinstance(party, bool) or not isinstance(party, Integral):
                raise ConfigurationError(f"dropped clients are integer indices, not {party!r}")
            party = int(party)
            if not 0 <= party < n:
                raise ConfigurationError(f"dropped client {party} is not in 0..{n - 1}")
            vanish[party] = min(vanish.get(party, len(PHASES)), PHASES.index(phase))
    return vanish


def _check_inputs(inputs: np.ndarray, bits: int) -> np.ndarray:
    try:
        arr = np.asarray(inputs)
    except ValueError:  # a ragged nested list: numpy's ValueError, not a typed error
        raise ConfigurationError("inputs must be an (n, d) array (ragged rows)") from None
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ConfigurationError("inputs must be an (n, d) array with n >= 2 and d >= 1")
    if arr.dtype.kind != "u":
        raise ConfigurationError(f"inputs must be unsigned integers, got {arr.dtype}")
    if bits not in (32, 64):
        raise ConfigurationError(f"bits must be 32 or 64, not {bits}")
    if arr.dtype.itemsize * 8 > bits and arr.size and int(arr.max()) >> bits:
        raise ConfigurationError(f"input values do not fit in {bits} bits")
    return arr


def run_round(
    inputs: np.ndarray,
    *,
    graph: str = "harary",
    k: int | None = None,
    threshold: int | None = None,
    dropped: Mapping[str, Iterable[int]] | None = None,
    bits: int = 32,
    active: bool = False,
    seed: int | bytes | None = None,
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION,
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION,
    on_phase: Callable[[str], None] | None = None,
    population: int | None = None,
) -> RoundOutcome:
    """Run one round in memory; like :func:`simulate_round` but also returns the report.

    ``population``: the clients the round was drawn from (None: the round is its own
    population): k and t are sized for its colluders and the setup names it, so each
    client counts them too (``RoundConfig.create(population=...)``).

    ``dropout_fraction`` and ``corrupt_fraction`` steer the default choice of k
    and t (see :class:`RoundConfig`) and are also the clients' own policy
    (:class:`ClientPolicy`), which checks every setup. A caller that picks ``k``
    or ``threshold`` itself plays every role, so its clients skip the k and t
    check (research only); all other checks stay. ``on_phase`` is called with
    the name of each phase the server enters, for progress display.
    """
    arr = _check_inputs(inputs, bits)
    n, d = arr.shape
    config = RoundConfig.create(
        n,
        d,
        bits=bits,
        graph=graph,
        k=k,
        threshold=threshold,  # type: ignore[arg-type]
        active=active,
        dropout_fraction=dropout_fraction,
        corrupt_fraction=corrupt_fraction,
        population=population,
    )
    round_id = graph_seed = None
    if seed is not None:  # reproducible graph and round id; keys and masks stay random
        digest = derive(b"secagg/v1/simulation", seed, size=32)
        round_id, graph_seed = digest[:16], hashlib.sha256(digest).digest()
    identity = {p: SigningKey.generate() for p in range(n)} if active else {}
    public = {p: key.verify_key for p, key in identity.items()}
    server = Server(config, identity_keys=public or None, round_id=round_id, graph_seed=graph_seed)
    policy = ClientPolicy(
        corrupt_fraction=corrupt_fraction,
        dropout_fraction=dropout_fraction,
        check_parameters=k is None and threshold is None,
    )
    clients = [
        Client(
            p,
            arr[p],
            signing_key=identity.get(p),
            identity_keys=public or None,
            policy=policy,
            round_id=server.round_id,  # each client takes this round's setup only
        )
        for p in range(n)
    ]
    vanish = _vanish_index(dropped, n)
    gone: set[int] = set()

    outgoing: list[ServerMessage] = server.start()
    while server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        if on_phase is not None:
            on_phase(server.phase.value)
        next_out: list[ServerMessage] = []
        for message in outgoing:
            party = message.recipient
            if party in gone:
                continue
            if isinstance(message, RoundAbort):
                clients[party].handle(_wire(message))
                continue
            reply_phase = PHASES.index(_REPLY_PHASE[type(message)])
            if vanish.get(party, len(PHASES)) <= reply_phase:
                gone.add(party)
                continue
            try:
                replies = clients[party].handle(_wire(message))
            except RoundAborted:
                gone.add(party)  # the client refused to go on: to the server, a dropout
                continue
            for reply in replies:
                next_out.extend(server.handle(_wire(reply)))
        if server.phase in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            break
        if not next_out:
            next_out = server.close_phase()
        outgoing = next_out
    return RoundOutcome(server.result(), server.report)


def simulate_round(
    inputs: np.ndarray,
    *,
    graph: str = "harary",
    k: int | None = None,
    threshold: int | None = None,
    dropped: Mapping[str, Iterable[int]] | None = None,
    bits: int = 32,
    active: bool = False,
    seed: int | bytes | None = None,
) -> np.ndarray:
    """Run one secure-aggregation round in memory and return the modular sum.

    ``inputs`` is an (n, d) unsigned integer array (values below 2^bits);
    ``dropped`` maps a phase name (``"share_keys"``, ``"masked_input"``,
    ``"consistency_check"``, ``"unmasking"``; also ``"advertise_keys"``) to the
    clients that vanish before sending that phase's message. Without the active
    variant there is no consistency message, so clients listed there vanish
    before unmasking.

    Returns the exact sum modulo 2^bits of the inputs of the clients whose
    masked input reached the server, or raises
    :class:`~secagg.errors.RoundAborted` with the reason.
    """
    return run_round(
        inputs,
        graph=graph,
        k=k,
        threshold=threshold,
        dropped=dropped,
        bits=bits,
        active=active,
        seed=seed,
    ).total
