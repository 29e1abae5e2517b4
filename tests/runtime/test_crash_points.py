"""A crash at every durable write of a federation, enumerated, not sampled.

Standard: a crashed server resumes from its database or aborts the round cleanly; a
round below threshold aborts, never returns a wrong sum; every epsilon in the ledger is
the epsilon of what actually ran. tests/integration/test_faults.py kills the server at
one point of a round and tests/runtime/test_store_safety.py injects a few failed writes;
this file walks *every* durable write a short federation makes, one run per point.

How. A clean run of the federation (three branches over the in-process transport,
SecAgg+, central DP charging the ledger, two rounds) records, in order, each durable
write of each role: the server's (every SQLite commit of its state and of its ledger,
every :func:`~secagg.durable.write_atomically` of its ledger key, the auditor's public
key file) and one branch's (its round mark). Then, for every point ``k`` and each way a
process can die there (:class:`Crash` raised *before* the write, *after* it took
effect, and for an atomic write *torn*: the temporary file left behind, no rename), the
same federation runs again, the role's process dies at ``k`` (its work stops, its
connections close, nothing it held in memory survives), a fresh process of that role
starts over the same files, as a restart would, and the federation runs to its end.

Invariants, against oracles the test computes itself:

* every complete round's checkpoint is the previous checkpoint plus the learning rate
  times (the plain sum of its contributors' updates + the noise drawn for it) over the
  expected cohort (the noise is recorded as the mechanism draws it); an aborted round
  says why and leaves no checkpoint;
* no round number starts twice, is released twice, or has two ledger rows; every
  finished round has its row;
* ``audit verify`` passes, also against the auditor's public key file;
* every row's epsilon is the exact Gaussian epsilon (closed form, not the project's
  accountant) of the precisions the charged rounds so far give their members, rounded
  up only a little; a charged round is one whose model the state stored;
* no branch trains a round twice.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import secagg.dp.central
import secagg.durable
import secagg.ledger.chain
from secagg.aggregation.policy import BranchPolicy
from secagg.ledger import verify_ledger
from secagg.ledger.chain import Ledger, load_public_key
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import RoundEnd, RoundStart, decode_message
from secagg.transport.base import NotConnected
from secagg.transport.inprocess import InProcessHub

D = 6
NAMES = ["b1", "b2", "b3"]
ROUNDS = 2
Z = 1.0
CLIP = 1.0
DELTA = 1e-3
LEARNING_RATE = 1.0
#: each branch's target: its update is ``target - model`` (small: no clipping)
TARGETS = {name: np.full(D, 0.01 * (i + 1)) for i, name in enumerate(NAMES)}
#: the branch whose round mark is crashed at each of its writes
CRASHED_BRANCH = "b1"
#: generous upper bounds: a run that reaches them is a hang, not a slow machine
IDLE = 60.0
JOIN = 120.0


class Crash(BaseException):
    """The process doing the write dies here (a BaseException: no handler of the
    runtime's may take it for an error it can record)."""


# --- the durable write points -------------------------------------------------------------


def _role(path: Path) -> str:
    """Whose write a file's is: the server's state, ledger and key, or a branch's mark."""
    name = path.name
    if name.startswith("state.sqlite"):
        return "server"
    if name.endswith(".mark"):
        return "branch:" + name.removesuffix(".mark")
    raise AssertionError(f"a durable write of an unexpected file: {path}")


@dataclass(frozen=True)
class Point:
    role: str
    kind: str  # "state commit", "ledger commit", "write_atomically", "public key file"
    file: str

    def __str__(self) -> str:
        return f"{self.kind} of {self.file}"


#: the ways a process can die at a write, by the kind of write
VARIANTS = {
    "state commit": ("before", "after"),
    "ledger commit": ("before", "after"),
    "write_atomically": ("before", "torn", "after"),
    "public key file": ("before", "torn", "after"),
}


@dataclass
class Writes:
    """Every durable write, in order per role; kills ``role``'s process at its write
    number ``at`` (``variant``: before, torn or after the write)."""

    role: str | None = None
    at: int | None = None
    variant: str | None = None
    seen: dict[str, list[Point]] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)
    fired: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, kind: str, path: Path) -> str | None:
        """Note a write; the variant of the crash to play at it, or None."""
        role = _role(path)
        with self._lock:
            if role in self.dead:
                raise Crash(f"{role} is dead")  # a dead process writes nothing more
            points = self.seen.setdefault(role, [])
            number = len(points)
            points.append(Point(role, kind, path.name))
            if role != self.role or number != self.at:
                return None
            self.dead.add(role)
            self.fired = True
            return self.variant

    def revive(self, role: str) -> None:
        """A fresh process of ``role`` starts: it writes again (and is not crashed twice)."""
        with self._lock:
            self.dead.discard(role)
            self.role = None


@contextlib.contextmanager
def instrumented(writes: Writes) -> Iterator[None]:
    """Route every durable write of the runtime through ``writes``."""
    patch = pytest.MonkeyPatch()
    original_tx = ServerStore._tx

    class HookedTransaction:
        def __init__(self, store: ServerStore) -> None:
            self._inner = original_tx(store)
            self._store = store

        def __enter__(self) -> None:
            self._inner.__enter__()

        def __exit__(self, kind: object, *rest: object) -> None:
            if kind is not None:
                self._inner.__exit__(kind, *rest)
                return
            crash = writes.enter("state commit", self._store.path)
            if crash == "before":  # dies with the transaction open: never committed
                self._store._db.close()  # as a dead process's: its locks go with it
                raise Crash("before the state's commit")
            self._inner.__exit__(None)
            if crash == "after":
                raise Crash("after the state's commit")

    @contextlib.contextmanager
    def ledger_tx(ledger: Ledger) -> Iterator[None]:
        # Ledger._tx, with the crash point between the transaction's body and its COMMIT
        ledger._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            ledger._db.execute("ROLLBACK")
            raise
        crash = writes.enter("ledger commit", ledger.path)
        if crash == "before":  # dies with the transaction open: never committed
            ledger._db.close()  # as a dead process's: its locks go with it
            raise Crash("before the ledger's commit")
        ledger._db.execute("COMMIT")
        if crash == "after":
            raise Crash("after the ledger's commit")

    original_write = secagg.durable.write_atomically

    def write_atomically(path: Path, data: bytes, **options: Any) -> None:
        crash = writes.enter("write_atomically", Path(path))
        if crash == "before":
            raise Crash("before write_atomically")
        if crash == "torn":  # killed between the temporary file and the rename
            fd, _ = tempfile.mkstemp(
                prefix=f".{Path(path).name}.", suffix=".tmp", dir=Path(path).parent
            )
            os.write(fd, data[: len(data) // 2])
            os.close(fd)
            raise Crash("write_atomically torn")
        original_write(path, data, **options)
        if crash == "after":
            raise Crash("after write_atomically")

    original_export = secagg.ledger.chain.export_public_key

    def export_public_key(public_key: bytes, path: str | Path) -> Path:
        crash = writes.enter("public key file", Path(path))
        if crash == "before":
            raise Crash("before the public key file")
        if crash == "torn":  # a plain write killed half-way
            whole = Path(original_export(public_key, path)).read_bytes()
            Path(path).write_bytes(whole[: len(whole) // 2])
            raise Crash("public key file torn")
        written = original_export(public_key, path)
        if crash == "after":
            raise Crash("after the public key file")
        return written

    try:
        patch.setattr(ServerStore, "_tx", lambda store: HookedTransaction(store))
        patch.setattr(Ledger, "_tx", ledger_tx)
        # every module that took the name (``from secagg.durable import ...``), and the
        # module itself (write_json_atomically calls it there)
        for module in list(sys.modules.values()):
            if getattr(module, "write_atomically", None) is original_write:
                patch.setattr(module, "write_atomically", write_atomically)
        patch.setattr(secagg.ledger.chain, "export_public_key", export_public_key)
        yield
    finally:
        patch.undo()


# --- the federation ------------------------------------------------------------------------


def _config(tmp_path: Path) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "crash",
                "clients": NAMES,
                "dimension": D,
                "rounds": ROUNDS,
                "server_learning_rate": LEARNING_RATE,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": IDLE},
            "server": {"state": str(tmp_path / "state.sqlite")},
            "dp": {"clip": CLIP, "noise_multiplier": Z, "delta": DELTA},
        }
    )


@dataclass
class Observed:
    """What the test sees of the runs, independently of the server's records."""

    noise: dict[int, np.ndarray] = field(default_factory=dict)  # round -> noise drawn
    trained: list[tuple[str, int]] = field(default_factory=list)  # (branch, round)
    started: list[int] = field(default_factory=list)  # round starts sent (numbers)
    released: list[int] = field(default_factory=list)  # round ends sent as complete
    round_begun: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ObservedHub(InProcessHub):
    """The in-process transport, noting each round start and completed round end sent."""

    def __init__(self, observed: Observed) -> None:
        super().__init__()
        self._observed = observed
        self._seen: set[tuple[str, int]] = set()

    def send(self, name: str, payload: bytes) -> None:
        message = decode_message(payload)
        super().send(name, payload)
        with self._observed.lock:
            if isinstance(message, RoundStart) and ("start", message.round) not in self._seen:
                self._seen.add(("start", message.round))
                self._observed.started.append(message.round)
            if isinstance(message, RoundEnd) and message.complete:
                if ("end", message.round) not in self._seen:
                    self._seen.add(("end", message.round))
                    self._observed.released.append(message.round)


class Branches:
    """The branch processes of one run; a crashed one is restarted at once (a fresh
    process over its state file), as a supervisor would."""

    def __init__(self, hub: InProcessHub, tmp_path: Path, writes: Writes, seen: Observed):
        self._hub, self._tmp, self._writes, self._seen = hub, tmp_path, writes, seen
        self.threads: list[threading.Thread] = []
        self.failures: list[BaseException] = []

    def start(self, name: str) -> None:
        while True:
            try:
                client = self._client(name)
                break
            except Crash:  # died creating its mark: the restarted process creates it
                self._writes.revive(f"branch:{name}")
        thread = threading.Thread(target=self._run, args=(name, client), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _client(self, name: str) -> FederationClient:
        holder: list[FederationClient] = []

        def train(model: np.ndarray) -> np.ndarray:
            with self._seen.lock:
                self._seen.trained.append((name, int(holder[0]._started or 0)))
            return TARGETS[name] - model

        session = self._hub.connect(name)
        try:
            client = FederationClient(
                name, train, session, policy=BranchPolicy(), state=self._tmp / f"{name}.mark"
            )
        except BaseException:
            session.close()
            raise
        holder.append(client)
        return client

    def _run(self, name: str, client: FederationClient) -> None:
        try:
            client.run(idle_timeout=IDLE)
        except NotConnected:
            return  # the server's process died: its connections closed
        except Crash:
            self._hub.disconnect(name)  # the process died: its stream closes
            self._writes.revive(f"branch:{name}")
            self.start(name)
        except BaseException as exc:  # reported by the test
            self.failures.append(exc)

    def stop(self) -> None:
        """Close every session (what a dead server's closed streams do) and wait."""
        for name in NAMES:
            self._hub.disconnect(name)
        self.join()

    def join(self) -> None:
        for thread in list(self.threads):
            thread.join(JOIN)
            assert not thread.is_alive(), "a branch did not stop"
        assert not self.failures, self.failures


def _record_noise(seen: Observed, patch: pytest.MonkeyPatch) -> None:
    """Keep each central noise vector the mechanism draws, under the round it is for."""
    original = secagg.dp.central.gaussian
    begin = ServerStore.begin_round

    def gaussian(*args: Any, **kwargs: Any) -> np.ndarray:
        drawn = original(*args, **kwargs)
        assert seen.round_begun is not None
        seen.noise[seen.round_begun] = np.array(drawn, dtype=np.float64)
        return drawn

    def begin_round(store: ServerStore, number: int, participants: list[str]) -> None:
        begin(store, number, participants)
        seen.round_begun = number

    patch.setattr(secagg.dp.central, "gaussian", gaussian)
    patch.setattr(ServerStore, "begin_round", begin_round)


def _federation(tmp_path: Path, writes: Writes, seen: Observed) -> bool:
    """One run of the server and its branches until the federation ends or the server's
    process dies (True: it died); a branch that dies is restarted within the run."""
    config = _config(tmp_path)
    hub = ObservedHub(seen)
    branches = Branches(hub, tmp_path, writes, seen)
    for name in NAMES:
        branches.start(name)
    try:
        state = open_server_state(config)
    except Crash:
        branches.stop()
        return True
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        server.run(wait_for_clients=IDLE)
        assert server.finished, server.stop_reason
    except Crash:
        branches.stop()
        return True
    finally:
        state.close()
    branches.join()
    return False


def run_crashed(tmp_path: Path, writes: Writes, seen: Observed) -> None:
    """The federation with ``writes``' crash, then (if the server died) a fresh server
    over the same files, run to the federation's end."""
    patch = pytest.MonkeyPatch()
    _record_noise(seen, patch)
    try:
        with instrumented(writes):
            if _federation(tmp_path, writes, seen):
                writes.revive("server")
                assert not _federation(tmp_path, writes, seen), "the restart crashed again"
    finally:
        patch.undo()


# --- the oracles ---------------------------------------------------------------------------


def _clipped(update: np.ndarray) -> np.ndarray:
    """An update scaled into the L2 ball of radius :data:`CLIP`, as a branch sends it."""
    norm = float(np.linalg.norm(update))
    return update if norm <= CLIP else update * (CLIP / norm)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def exact_gaussian_epsilon(precision: float, delta: float) -> float:
    """The exact epsilon of a Gaussian mechanism of ``precision`` (sum of 1/z^2) at
    ``delta`` (Balle and Wang 2018), by bisection on its delta(epsilon)."""
    mu = math.sqrt(precision)

    def delta_of(eps: float) -> float:
        return _phi(-eps / mu + mu / 2) - math.exp(eps) * _phi(-eps / mu - mu / 2)

    low, high = 0.0, 1.0
    while delta_of(high) > delta:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if delta_of(middle) > delta else (low, middle)
    return high


def check_invariants(tmp_path: Path, seen: Observed, what: str) -> None:
    store = ServerStore(tmp_path / "state.sqlite", create=False)
    try:
        rounds = store.rounds()
        checkpoints = {
            number: np.frombuffer(bytes(blob), dtype="<f8").copy()
            for number, blob in store._db.execute("SELECT round, model FROM checkpoints")
        }
    finally:
        store.close()
    # the federation finished: every configured round complete
    complete = [r for r in rounds if r["status"] == "complete"]
    assert len(complete) == ROUNDS, f"{what}: {rounds}"
    assert all(r["status"] in ("complete", "aborted") for r in rounds), f"{what}: {rounds}"
    # released models: the plain sum of the contributors' updates plus the noise drawn
    model = np.zeros(D)
    for row in rounds:
        number, report = row["number"], row["report"] or {}
        if row["status"] == "aborted":
            assert report.get("reason"), f"{what}: round {number} aborted without a reason"
            assert number not in checkpoints, f"{what}: aborted round {number} has a model"
            continue
        contributed = report["contributed"]
        assert set(contributed) <= set(row["participants"]), f"{what}: round {number}"
        assert len(contributed) >= 2, f"{what}: round {number} released {contributed}"
        sent = model.astype(np.float32).astype(np.float64)  # the model as branches get it
        plain = sum(_clipped(TARGETS[name] - sent) for name in contributed)
        expected = model + LEARNING_RATE * (plain + seen.noise[number]) / len(NAMES)
        assert np.allclose(checkpoints[number], expected, atol=1e-4), (
            f"{what}: round {number}'s model is not its contributors' sum plus its noise "
            f"({contributed}, {checkpoints[number] - expected}, {rounds})"
        )
        model = checkpoints[number]
    # no round started or released twice
    assert len(seen.started) == len(set(seen.started)), f"{what}: {seen.started}"
    assert seen.started == sorted(seen.started), f"{what}: {seen.started}"
    assert len(seen.released) == len(set(seen.released)), f"{what}: {seen.released}"
    assert set(seen.released) <= {r["number"] for r in complete}, f"{what}: {seen.released}"
    # no branch trained a round twice
    assert len(seen.trained) == len(set(seen.trained)), f"{what}: {sorted(seen.trained)}"
    # the ledger: verifies (also against the auditor's key file), one row per round
    ledger = tmp_path / "state.sqlite.ledger"
    public = load_public_key(tmp_path / "state.sqlite.ledger-key.pub")
    audit = verify_ledger(ledger, public_key=public)
    assert audit.ok, f"{what}: {audit.first_failure}"
    rows = [row.entry for row in audit.chain.rows]
    assert [e["round"] for e in rows] == [r["number"] for r in rounds], f"{what}: {rows}"
    # every claim: the exact Gaussian epsilon of the rounds charged up to its own
    precision: dict[str, float] = {}
    for row, entry in zip(rounds, rows, strict=True):
        if row["status"] == "complete" or (row["report"] or {}).get("revealed"):
            for name in row["participants"]:
                precision[name] = precision.get(name, 0.0) + 1.0 / Z**2
        claim = entry["privacy"]["epsilon"]
        if not precision:
            assert claim is None, f"{what}: round {row['number']} claims {claim}"
            continue
        exact = exact_gaussian_epsilon(max(precision.values()), DELTA)
        assert claim is not None and exact * (1 - 1e-9) <= claim <= exact * 1.01, (
            f"{what}: round {row['number']} claims epsilon {claim}, its charged rounds give {exact}"
        )


# --- the enumeration -----------------------------------------------------------------------


def _clean_run(tmp_path: Path) -> dict[str, list[Point]]:
    writes, seen = Writes(), Observed()
    run_crashed(tmp_path, writes, seen)
    check_invariants(tmp_path, seen, "the clean run")
    return writes.seen


def _cases(points: dict[str, list[Point]]) -> list[tuple[str, int, str]]:
    return [
        (role, k, variant)
        for role in ("server", f"branch:{CRASHED_BRANCH}")
        for k, point in enumerate(points[role])
        for variant in VARIANTS[point.kind]
    ]


def test_every_durable_write_survives_a_crash_before_after_and_torn(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    points = _clean_run(tmp_path_factory.mktemp("clean"))
    for role in ("server", f"branch:{CRASHED_BRANCH}"):
        print(f"{role}: {len(points[role])} durable writes")
        for k, point in enumerate(points[role]):
            print(f"  {k:2d} {point}")
    cases = _cases(points)
    print(f"{len(cases)} crash cases")
    failures: list[str] = []
    for role, k, variant in cases:
        what = f"{role} crashed {variant} write {k} ({points[role][k]})"
        tmp = tmp_path_factory.mktemp("crash")
        writes, seen = Writes(role=role, at=k, variant=variant), Observed()
        try:
            run_crashed(tmp, writes, seen)
            assert writes.fired, f"{what}: the run never reached that write"
            check_invariants(tmp, seen, what)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
        except Exception as exc:  # every case is reported together
            failures.append(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())}")
    assert not failures, f"{len(failures)} of {len(cases)} cases fail:\n" + "\n".join(failures)
