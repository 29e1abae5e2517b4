"""Sans-I/O state machines of the masking protocol (Bonawitz et al. 2017; SecAgg+ 2020).

Messages in, messages out: :class:`Client` and :class:`Server` never touch a
socket or a clock. :func:`simulate_round` runs a whole round in memory.
"""

from secagg.protocol.client import Client, ClientPhase
from secagg.protocol.config import ClientPolicy, RoundConfig
from secagg.protocol.graph import NeighbourGraph
from secagg.protocol.messages import GraphKind, decode, encode
from secagg.protocol.server import RoundReport, Server, ServerPhase
from secagg.protocol.simulation import PHASES, RoundOutcome, run_round, simulate_round

__all__ = [
    "PHASES",
    "Client",
    "ClientPhase",
    "ClientPolicy",
    "GraphKind",
    "NeighbourGraph",
    "RoundConfig",
    "RoundOutcome",
    "RoundReport",
    "Server",
    "ServerPhase",
    "decode",
    "encode",
    "run_round",
    "simulate_round",
]
