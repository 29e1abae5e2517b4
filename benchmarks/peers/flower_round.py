"""One SecAgg+ round of Flower 1.42, unmodified, in this process, instrumented per stage.

Run by ``run.py`` in a subprocess (one round per process); prints one JSON
object on stdout. What runs:

* the server is Flower's own ``SecAggPlusWorkflow`` (``num_shares = k + 1``, or
  ``1.0`` for the complete graph, ``reconstruction_threshold = t``) with a
  ``LegacyContext`` and ``FedAvg``, exactly as ``DefaultWorkflow`` would call it
  for one fit round;
* each client is a ``ClientApp`` with Flower's own ``secaggplus_mod``; its
  training step returns a fixed float32 vector of length d (N(0, 0.05^2),
  ``num_examples`` = 100) and does nothing else;
* the network is replaced by :class:`ProtoGrid`, a ``Grid`` that delivers every
  message through a full protobuf round trip (``message_to_proto`` ->
  ``SerializeToString`` -> ``FromString`` -> ``message_from_proto``), both ways,
  so each side gets its own copy and the byte counts are the real message sizes.
  Clients run one after the other.

Dropouts: the chosen clients answer setup and share_keys and then never answer
again (no reply from collect_masked_vectors on), the one dropout case Flower
1.42 handles. A round whose random graph leaves some client with fewer than t
live neighbours is aborted by Flower ("Insufficient available nodes", or too
few shares); the driver then reruns with the next graph seed, same data and
dropouts, and records the attempt.

Clocks (``time.process_time`` for CPU, all threads, since Flower's Shamir runs
in a thread pool; ``perf_counter`` for wall), per stage:

* client = time inside ``secaggplus_mod`` minus time inside its ``call_next``
  (the fake training plus Flower's legacy FitIns/FitRes conversion, excluded);
* serde = the protobuf round trips in both directions;
* server = the workflow's stage method minus clients, serde, the whole
  ``ClientApp`` call and ``FedAvg.aggregate_fit`` (excluded).
"""

from __future__ import annotations

import logging
import os
import random
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # before flwr is imported

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    STAGES,
    Cell,
    Clock,
    StageRecord,
    client_updates,
    dropped_clients,
    round_main,
    summarise,
)

try:
    import flwr
    from flwr.app import ConfigRecord, Context, Message, RecordDict
    from flwr.client import ClientApp, NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.common.serde import message_from_proto, message_to_proto
    from flwr.compat.common import recorddict_compat as compat
    from flwr.proto.message_pb2 import Message as ProtoMessage
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.compat.grid_client_proxy import GridClientProxy
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey
    from flwr.serverapp.grid import Grid
    from flwr.supercore.task_identity import TaskIdentity
except ImportError as exc:  # pragma: no cover - depends on the install
    print(f'Flower is not installed ({exc}): pip install -e ".[peers]"', file=sys.stderr)
    sys.exit(3)

#: Every client reports this many examples; FedAvg weights are then equal and Flower
#: scales each update by num_examples / max_weight = 0.1 before quantising.
NUM_EXAMPLES = 100
FIRST_NODE_ID = 1000  # Flower reserves small ids (the SuperLink is node 1)
STAGE_KEY = "secaggplus_configs"


class _Meter:
    """Where the grid and the client wrapper book their clocks for the current stage."""

    def __init__(self) -> None:
        self.stages = {name: StageRecord(name) for name in STAGES}
        self.current: StageRecord = self.stages[STAGES[0]]
        self.client_cpu: dict[int, float] = {}
        self.bytes_up: dict[int, int] = {}
        self.bytes_down: dict[int, int] = {}
        self.fedavg = Clock()


def _timed_mod(meter: _Meter) -> Callable[..., Message]:
    """Wrap Flower's secaggplus_mod (called unchanged) to time it and its call_next."""

    def mod(msg: Message, ctxt: Context, call_next: Callable[..., Message]) -> Message:
        inner = Clock()

        def timed_next(m: Message, c: Context) -> Message:
            with inner.measure():
                return call_next(m, c)

        outer = Clock()
        with outer.measure():
            reply = secaggplus_mod(msg, ctxt, timed_next)
        stage = meter.current
        stage.clients.cpu += outer.cpu - inner.cpu
        stage.clients.wall += outer.wall - inner.wall
        node = msg.metadata.dst_node_id
        meter.client_cpu[node] = meter.client_cpu.get(node, 0.0) + outer.cpu - inner.cpu
        return reply

    return mod


class _FakeTrainer(NumPyClient):
    """A client whose 'training' returns its fixed update (no work to measure)."""

    def __init__(self, update: np.ndarray) -> None:
        self.update = update

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Any]
    ) -> tuple[list[np.ndarray], int, dict[str, Any]]:
        return [self.update], NUM_EXAMPLES, {}


class ProtoGrid(Grid):
    """An in-process Grid: every message crosses a protobuf round trip, clients in turn."""

    def __init__(
        self,
        app: ClientApp,
        contexts: dict[int, Context],
        dropped: set[int],
        meter: _Meter,
    ) -> None:
        self._app = app
        self._contexts = contexts
        self._dropped = dropped
        self._meter = meter
        self._replies: dict[str, Message] = {}

    # --- the abstract API the workflow needs -----------------------------------

    def set_run(self, run: Any) -> None:
        self._run = run

    @property
    def run(self) -> Any:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = str(uuid.uuid4())  # as the SuperLink does
            ids.append(msg.metadata.message_id)
            self._deliver(msg)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))

    # --- delivery ----------------------------------------------------------------

    def _deliver(self, msg: Message) -> None:
        meter, stage = self._meter, self._meter.current
        node = msg.metadata.dst_node_id
        with stage.serde.measure():
            wire = message_to_proto(msg).SerializeToString()
            received = message_from_proto(ProtoMessage.FromString(wire))
        stage.bytes_down += len(wire)
        meter.bytes_down[node] = meter.bytes_down.get(node, 0) + len(wire)
        if node in self._dropped and stage.stage not in ("setup", "share_keys"):
            return  # vanished after sharing its keys: no reply, ever
        before = Clock(stage.clients.cpu, stage.clients.wall)
        app_call = Clock()
        with app_call.measure():
            reply = self._app(received, self._contexts[node])
        # the ClientApp call minus the mod's own protocol work is not the protocol's
        stage.excluded.cpu += app_call.cpu - (stage.clients.cpu - before.cpu)
        stage.excluded.wall += app_call.wall - (stage.clients.wall - before.wall)
        with stage.serde.measure():
            wire = message_to_proto(reply).SerializeToString()
            back = message_from_proto(ProtoMessage.FromString(wire))
        stage.bytes_up += len(wire)
        stage.replies += 1
        meter.bytes_up[node] = meter.bytes_up.get(node, 0) + len(wire)
        self._replies[msg.metadata.message_id] = back


class _TimedFedAvg(FedAvg):
    """FedAvg whose aggregation time is booked as excluded (not SecAgg work)."""

    def __init__(self, meter: _Meter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._meter = meter

    def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
        clock = Clock()
        with clock.measure():
            out = super().aggregate_fit(server_round, results, failures)
        self._meter.current.excluded.add(clock)
        self._meter.fedavg.add(clock)
        return out


class _TimedWorkflow(SecAggPlusWorkflow):
    """Flower's workflow with a clock around each stage method (the methods are Flower's)."""

    def __init__(self, meter: _Meter, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._meter = meter
        self.completed: list[str] = []

    def _stage(self, name: str, method: Callable[..., bool], *args: Any) -> bool:
        self._meter.current = self._meter.stages[name]
        with self._meter.current.total.measure():
            ok = method(*args)
        if ok:
            self.completed.append(name)
        return ok

    def setup_stage(self, grid: Any, context: Any, state: Any) -> bool:
        return self._stage("setup", super().setup_stage, grid, context, state)

    def share_keys_stage(self, grid: Any, context: Any, state: Any) -> bool:
        return self._stage("share_keys", super().share_keys_stage, grid, context, state)

    def collect_masked_vectors_stage(self, grid: Any, context: Any, state: Any) -> bool:
        return self._stage(
            "collect_masked_vectors", super().collect_masked_vectors_stage, grid, context, state
        )

    def unmask_stage(self, grid: Any, context: Any, state: Any) -> bool:
        return self._stage("unmask", super().unmask_stage, grid, context, state)


def _one_attempt(cell: Cell, updates: np.ndarray, dropped: list[int], graph_seed: int) -> Any:
    random.seed(graph_seed)  # Flower's client sampling and its ring shuffle use `random`
    # what flwr.server.compat.app sets before a ServerApp runs: Message() reads it
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID
    meter = _Meter()
    node_ids = [FIRST_NODE_ID + i for i in range(cell.n)]
    contexts = {
        nid: Context(run_id=1, node_id=nid, node_config={}, state=RecordDict(), run_config={})
        for nid in node_ids
    }

    def client_fn(context: Context) -> Any:
        return _FakeTrainer(updates[context.node_id - FIRST_NODE_ID]).to_client()

    app = ClientApp(client_fn=client_fn, mods=[_timed_mod(meter)])
    grid = ProtoGrid(app, contexts, {FIRST_NODE_ID + i for i in dropped}, meter)
    strategy = _TimedFedAvg(
        meter,
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=cell.n,
        min_available_clients=cell.n,
        accept_failures=True,
    )
    manager = SimpleClientManager()
    for nid in node_ids:
        manager.register(GridClientProxy(nid, grid, run_id=1))
    context = LegacyContext(
        Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}),
        strategy=strategy,
        client_manager=manager,
    )
    # the global model the FitIns carry down (float32 zeros), and round 1's config
    model = compat.parameters_to_arrayrecord(
        ndarrays_to_parameters([np.zeros(cell.d, dtype=np.float32)]), keep_input=True
    )
    context.state.array_records[MAIN_PARAMS_RECORD] = model
    context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
        {WorkflowKey.CURRENT_ROUND: 1, WorkflowKey.START_TIME: 0.0}
    )
    workflow = _TimedWorkflow(
        meter,
        num_shares=1.0 if cell.complete else cell.k + 1,
        reconstruction_threshold=(cell.t / cell.n) if cell.complete else cell.t,
    )
    workflow(grid, context)
    return meter, workflow, context


def run(cell: Cell, seed: int, max_attempts: int = 5) -> dict[str, Any]:
    """One complete round (retrying a new graph if Flower aborts); the JSON record."""
    logging.getLogger("flwr").setLevel(logging.WARNING)
    updates = client_updates(cell.n, cell.d, seed)
    dropped = dropped_clients(cell.n, cell.dropped_count, seed)
    aborted: list[dict[str, Any]] = []
    for attempt in range(max_attempts):
        graph_seed = seed * 1000 + attempt
        meter, workflow, context = _one_attempt(cell, updates, dropped, graph_seed)
        if workflow.completed == list(STAGES):
            break
        aborted.append({"graph_seed": graph_seed, "completed_stages": workflow.completed})
    else:
        raise RuntimeError(f"Flower aborted {max_attempts} rounds in a row: {aborted}")

    survivors = [i for i in range(cell.n) if i not in set(dropped)]
    params = compat.arrayrecord_to_parameters(
        context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True
    )
    result = np.asarray(parameters_to_ndarrays(params)[0], dtype=np.float64)
    expected = updates[survivors].astype(np.float64).mean(axis=0)
    error = float(np.max(np.abs(result - expected)))
    # each client's quantisation error is at most one step of 2 * 8 / 2^22 = 2^-18 on the
    # update scaled by num_examples / max_weight; the mean divides that scale back out
    ratio = round(NUM_EXAMPLES / 1000.0 * 2**22) / 2**22
    tolerance = 2.0 * 2.0**-18 / ratio
    node_ids = {FIRST_NODE_ID + i: i for i in range(cell.n)}
    return summarise(
        list(meter.stages.values()),
        system="flower",
        cell=cell,
        per_client_cpu=[meter.client_cpu.get(FIRST_NODE_ID + i, 0.0) for i in range(cell.n)],
        bytes_up={node_ids[k]: v for k, v in meter.bytes_up.items()},
        bytes_down={node_ids[k]: v for k, v in meter.bytes_down.items()},
        survivor_ids=survivors,
        correctness={
            "what": "Flower's FedAvg result (the unmasked weighted mean) against the float64 "
            "mean of the surviving clients' float32 updates",
            "max_abs_error": error,
            "tolerance": tolerance,
            "matches": bool(error <= tolerance and result.shape == expected.shape),
            "included": len(survivors),
        },
        extra={
            "seed": seed,
            "dropped": dropped,
            "aborted_attempts": aborted,
            "fedavg_cpu": meter.fedavg.cpu,
            "flower_parameters": {
                "num_shares": 1.0 if cell.complete else cell.k + 1,
                "reconstruction_threshold": (cell.t / cell.n) if cell.complete else cell.t,
                "clipping_range": 8.0,
                "quantization_range": 2**22,
                "modulus_range": 2**32,
                "max_weight": 1000.0,
                "num_examples": NUM_EXAMPLES,
            },
            "versions": {"flwr": flwr.__version__, "numpy": np.__version__},
        },
    )


def main(argv: list[str] | None = None) -> None:
    round_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
