"""A federation crashed at chosen durable writes, restarted, and checked against oracles.

Shared by tests/runtime/test_crash_points.py (SecAgg+, central and distributed DP: the
server's and a branch's writes) and tests/runtime/test_crash_points_keyholder.py (CKKS:
the key holder's writes): the same harness, the same invariants. See the first file's
text for what is enumerated and why.

How a crash is played in one process: every durable write of the runtime (each SQLite
commit of the server's state and of its ledger, each
:func:`~secagg.durable.write_atomically`, the ledger's public key file) goes through
:class:`Writes`, which numbers them per role (the server, each branch, the key holder:
told apart by the file written) and raises :class:`Crash` at the chosen ones, *before*
the write, *after* it took effect or, for a file, *torn* (its temporary file left, no
rename). The dying role's transactions die open (their connection closed, as a dead
process's is), its sessions close, and a fresh process of the role starts over the same
files.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _gaussian import exact_gaussian_epsilon

import secagg.dp.central
import secagg.dp.noise
import secagg.durable
import secagg.ledger.chain
from secagg.aggregation.ckks import KeyHolderSession
from secagg.aggregation.policy import BranchPolicy
from secagg.ledger import verify_ledger
from secagg.ledger.chain import Ledger, load_public_key
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.launch import build_server, key_holder_service, open_server_state
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import RoundEnd, RoundStart, decode_message
from secagg.transport.base import NotConnected
from secagg.transport.inprocess import InProcessHub

D = 6
NAMES = ["b1", "b2", "b3"]
ROUNDS = 2
CLIP = 1.0
DELTA = 1e-3
LEARNING_RATE = 1.0
#: each branch's target: its update is ``target - model`` (small: no clipping)
TARGETS = {name: np.full(D, 0.1 * (i + 1)) for i, name in enumerate(NAMES)}
#: the branch whose round mark is crashed at each of its writes
CRASHED_BRANCH = "b1"
#: the CKKS key holder's name, and its key file's (its record and opened round beside it)
KEY_HOLDER = "compliance"
KEY_FILE = "compliance.key"
#: generous upper bounds: a run that reaches them is a hang, not a slow machine
IDLE = 60.0
JOIN = 120.0
#: a phase's deadline: phases here take milliseconds; a party that cannot come back
#: (a restart refused) costs a failing case this long, not a minute
PHASE_SECONDS = 20.0
#: how long a server waits for a quorum (a restarted party is back within milliseconds;
#: one that cannot restart would otherwise hold the case for the default 600 s)
QUORUM_WAIT = 15.0


class Crash(BaseException):
    """The process doing the write dies here (a BaseException: no handler of the
    runtime's may take it for an error it can record)."""


# --- the durable write points -------------------------------------------------------------


def _role(path: Path) -> str:
    """Whose write a file's is: the server's state, ledger and key, a branch's mark, or
    the key holder's record and opened round."""
    name = path.name
    if name.startswith("state.sqlite"):
        return "server"
    if name.startswith(KEY_FILE):
        return "keyholder"
    if name.endswith(".mark"):
        return "branch:" + name.removesuffix(".mark")
    raise AssertionError(f"a durable write of an unexpected file: {path}")


@dataclass(frozen=True)
class Point:
    role: str
    kind: str  # "state commit", "ledger commit", "write_atomically", "public key file"
    file: str
    by: str = ""  # the store's method that commits (its round, if any)

    def __str__(self) -> str:
        return f"{self.kind} of {self.file}" + (f" ({self.by})" if self.by else "")


#: the ways a process can die at a write, by the kind of write
VARIANTS = {
    "state commit": ("before", "after"),
    "ledger commit": ("before", "after"),
    "write_atomically": ("before", "torn", "after"),
    "create_json_atomically": ("before", "torn", "after"),
    "public key file": ("before", "torn", "after"),
}


@dataclass
class Writes:
    """Every durable write, numbered per role across the runs of one case; kills the
    role's process at each write listed in ``crashes`` ((role, number) -> before, torn
    or after)."""

    crashes: dict[tuple[str, int], str] = field(default_factory=dict)
    seen: dict[str, list[Point]] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)
    fired: list[tuple[str, int]] = field(default_factory=list)
    #: the write each crash was played at, as this run saw it (compared with the write
    #: the case claims to crash: the numbering is per role, and a run that wrote in
    #: another order would crash another write than the one its case names)
    hit: dict[tuple[str, int], Point] = field(default_factory=dict)
    #: the server's write count when each restarted server process began
    restarts: list[int] = field(default_factory=list)
    #: rounds whose revealed sum's charge the state committed (note_reveal)
    noted_reveal: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, kind: str, path: Path, by: str = "") -> str | None:
        """Note a write; the variant of the crash to play at it, or None."""
        role = _role(path)
        with self._lock:
            if role in self.dead:
                raise Crash(f"{role} is dead")  # a dead process writes nothing more
            points = self.seen.setdefault(role, [])
            number = len(points)
            points.append(Point(role, kind, path.name, by))
            crash = self.crashes.get((role, number))
            if crash is not None:
                self.dead.add(role)
                self.fired.append((role, number))
                self.hit[(role, number)] = points[-1]
            return crash

    def revive(self, role: str) -> None:
        """A fresh process of ``role`` starts over the same files."""
        with self._lock:
            self.dead.discard(role)
            if role == "server":
                self.restarts.append(len(self.seen.get("server", [])))


def _committer(store: ServerStore) -> tuple[str, int | None]:
    """The store's method whose transaction this is, and its round (from the stack)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_locals.get("self") is store and frame.f_code.co_name != "_tx":
            number = frame.f_locals.get("number")
            return frame.f_code.co_name, number if isinstance(number, int) else None
        frame = frame.f_back
    return "?", None


def _ledger_committer(ledger: Ledger) -> str:
    """ "append <round>" or "open" (the genesis head), from the stack."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_locals.get("self") is ledger and frame.f_code.co_name == "append":
            return f"append {frame.f_locals['entry'].get('round')}"
        frame = frame.f_back
    return "open"


@contextlib.contextmanager
def instrumented(writes: Writes) -> Iterator[None]:
    """Route every durable write of the runtime through ``writes``."""
    patch = pytest.MonkeyPatch()
    original_tx = ServerStore._tx

    class HookedTransaction:
        def __init__(self, store: ServerStore) -> None:
            self._inner = original_tx(store)
            self._store = store
            self._by, self._round = _committer(store)

        def __enter__(self) -> None:
            self._inner.__enter__()

        def __exit__(self, kind: object, *rest: object) -> None:
            if kind is not None:
                self._inner.__exit__(kind, *rest)
                return
            by = self._by if self._round is None else f"{self._by} {self._round}"
            crash = writes.enter("state commit", self._store.path, by)
            if crash == "before":  # dies with the transaction open: never committed
                self._store._db.close()  # as a dead process's: its locks go with it
                raise Crash("before the state's commit")
            self._inner.__exit__(None)
            if self._by == "note_reveal" and self._round is not None:
                writes.noted_reveal.add(self._round)
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
        crash = writes.enter("ledger commit", ledger.path, _ledger_committer(ledger))
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

    # (absent before 2026-12-05: the key holder's record was then made under its lock)
    original_create = getattr(secagg.durable, "create_json_atomically", None)

    def create_json_atomically(path: Path, data: Any, **options: Any) -> bool:
        crash = writes.enter("create_json_atomically", Path(path))
        if crash == "before":
            raise Crash("before create_json_atomically")
        if crash == "torn":  # killed between the temporary file and the link
            fd, _ = tempfile.mkstemp(
                prefix=f".{Path(path).name}.", suffix=".tmp", dir=Path(path).parent
            )
            os.write(fd, b'{"version":')
            os.close(fd)
            raise Crash("create_json_atomically torn")
        assert original_create is not None
        created = bool(original_create(path, data, **options))
        if crash == "after":
            raise Crash("after create_json_atomically")
        return created

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
            if original_create is not None and (
                getattr(module, "create_json_atomically", None) is original_create
            ):
                patch.setattr(module, "create_json_atomically", create_json_atomically)
        patch.setattr(secagg.ledger.chain, "export_public_key", export_public_key)
        yield
    finally:
        patch.undo()


# --- the federation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Federation:
    """The federation a case runs: its DP mechanism, its backend, how tightly its model
    is known."""

    mechanism: str  # [dp] mechanism
    noise_multiplier: float
    #: how far a released model may be from its oracle: recorded noise is exact (float32
    #: models, the ring's rounding and CKKS's error remain); the distributed noise, the
    #: branches' own, is not recorded, so its multiplier is tiny (the noise on the mean
    #: is then about 3e-4, and a missing or extra contributor moves it by 0.033)
    tolerance: float
    #: CKKS with a key holder (its record and opened round on disk), else SecAgg+
    key_holder: bool = False


CENTRAL = Federation("central", 1.0, 1e-4)
DISTRIBUTED = Federation("distributed", 0.001, 0.01)
#: the key holder adds the central noise (the server asks for it); recorded as drawn
CKKS_CENTRAL = Federation("central", 1.0, 1e-4, key_holder=True)


def federation_config(tmp_path: Path, federation: Federation) -> FederationConfig:
    backend: dict[str, Any] = {"name": "secagg+", "value_bound": 1.0}
    if federation.key_holder:
        backend = {"name": "ckks", "value_bound": 1.0, "key_holder": KEY_HOLDER}
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
            "backend": backend,
            "deadlines": {"phase_seconds": PHASE_SECONDS, "training_seconds": PHASE_SECONDS},
            "server": {"state": str(tmp_path / "state.sqlite")},
            "dp": {
                "clip": CLIP,
                "noise_multiplier": federation.noise_multiplier,
                "delta": DELTA,
                "mechanism": federation.mechanism,
            },
        }
    )


@dataclass
class Observed:
    """What the test sees of the runs, independently of the server's records."""

    noise: dict[int, np.ndarray] = field(default_factory=dict)  # round -> central noise
    decrypted: list[int] = field(default_factory=list)  # rounds the key holder answered
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


class Processes:
    """The branch processes (and the key holder's) of one run; a crashed one is restarted
    at once (a fresh process over its files), as a supervisor would."""

    def __init__(
        self,
        config: FederationConfig,
        hub: InProcessHub,
        tmp_path: Path,
        writes: Writes,
        seen: Observed,
        pin: bytes | None,
    ) -> None:
        self._config, self._hub, self._tmp = config, hub, tmp_path
        self._writes, self._seen, self._pin = writes, seen, pin
        self.threads: list[threading.Thread] = []
        self.failures: list[BaseException] = []
        #: set by :meth:`stop` before it closes the sessions: from then on a party's lost
        #: session is the dead server's, the one way a party here may stop early
        self.stopping = False

    def start_all(self) -> None:
        for name in NAMES:
            self.start(name)
        if self._pin is not None:
            self.start(KEY_HOLDER)

    def start(self, name: str) -> None:
        role = "keyholder" if name == KEY_HOLDER else f"branch:{name}"
        session = None
        while True:
            session = self._hub.connect(name)
            try:
                process = (
                    self._key_holder(session)
                    if role == "keyholder"
                    else self._client(name, session)
                )
                break
            except Crash:  # died writing its state at start: the restarted process does
                session.close()
                self._writes.revive(role)
            except BaseException:
                session.close()
                raise
        thread = threading.Thread(target=self._run, args=(name, role, process), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _client(self, name: str, session: Any) -> FederationClient:
        holder: list[FederationClient] = []

        def train(model: np.ndarray) -> np.ndarray:
            with self._seen.lock:
                self._seen.trained.append((name, int(holder[0]._started or 0)))
            return TARGETS[name] - model

        policy = BranchPolicy(key_holder_fingerprint=self._pin)
        client = FederationClient(
            name, train, session, policy=policy, state=self._tmp / f"{name}.mark"
        )
        holder.append(client)
        return client

    def _key_holder(self, session: Any) -> KeyHolderService:
        return key_holder_service(self._config, session, {"key": str(self._tmp / KEY_FILE)})

    def _run(self, name: str, role: str, process: FederationClient | KeyHolderService) -> None:
        try:
            process.run(idle_timeout=IDLE)
            outcome = process.outcome if isinstance(process, KeyHolderService) else None
            if isinstance(process, FederationClient):
                outcome = process.stats.outcome
            if outcome != "finished" and not self.stopping:
                raise AssertionError(f"{name} stopped before the federation's end: {outcome}")
        except NotConnected:
            # only the server's process dying (stop) closes a party's session here: a
            # session lost while the server ran is a party gone quietly, whose crash
            # points would be reached by no one and whose rounds the others carried
            if not self.stopping:
                self.failures.append(
                    AssertionError(f"{name} lost its session while the server ran")
                )
        except Crash:
            self._hub.disconnect(name)  # the process died: its stream closes
            self._writes.revive(role)
            try:
                self.start(name)
            except BaseException as exc:  # a restart refused: reported by the test
                self.failures.append(exc)
        except BaseException as exc:  # reported by the test
            self.failures.append(exc)

    def stop(self, *, check: bool = True) -> None:
        """Close every session (what a dead server's closed streams do) and wait."""
        self.stopping = True
        for name in [*NAMES, KEY_HOLDER]:
            self._hub.disconnect(name)
        self.join(check=check)

    def join(self, *, check: bool = True) -> None:
        for thread in list(self.threads):
            thread.join(JOIN)
            assert not thread.is_alive(), "a branch or the key holder did not stop"
        if check and self.failures:
            first = self.failures[0]
            raise AssertionError(
                f"a party failed: {type(first).__name__}: {' '.join(str(first).split())}"
            )


def _record_noise(seen: Observed, patch: pytest.MonkeyPatch) -> None:
    """Keep the noise each round's release adds, under the round it is for: the central
    mechanism's on the server (SecAgg+), or the key holder's in the decryption it answers
    (CKKS: a decryption whose answer never left, its process killed first, is not kept)."""
    central = secagg.dp.central.gaussian
    plain = secagg.dp.noise.gaussian
    begin = ServerStore.begin_round
    decrypt = KeyHolderSession._decrypt
    drawing = threading.local()

    def server_gaussian(*args: Any, **kwargs: Any) -> np.ndarray:
        drawn = central(*args, **kwargs)
        assert seen.round_begun is not None
        seen.noise[seen.round_begun] = np.array(drawn, dtype=np.float64)
        return drawn

    def key_holder_gaussian(*args: Any, **kwargs: Any) -> np.ndarray:
        drawn = plain(*args, **kwargs)
        parts = getattr(drawing, "parts", None)
        if parts is not None:
            parts.append(np.array(drawn, dtype=np.float64))
        return drawn

    def begin_round(store: ServerStore, number: int, participants: list[str]) -> None:
        begin(store, number, participants)
        seen.round_begun = number

    def answered(session: KeyHolderSession, view: Any, round_number: int, **options: Any) -> bytes:
        drawing.parts = []
        try:
            reply = decrypt(session, view, round_number, **options)
            with seen.lock:
                seen.decrypted.append(round_number)
                seen.noise[round_number] = np.concatenate(drawing.parts)
            return reply
        finally:
            drawing.parts = None

    patch.setattr(secagg.dp.central, "gaussian", server_gaussian)
    patch.setattr(secagg.dp.noise, "gaussian", key_holder_gaussian)
    patch.setattr(ServerStore, "begin_round", begin_round)
    patch.setattr(KeyHolderSession, "_decrypt", answered)


def _federation(
    config: FederationConfig, tmp_path: Path, writes: Writes, seen: Observed, pin: bytes | None
) -> bool:
    """One run of the server and its parties until the federation ends or the server's
    process dies (True: it died); a party that dies is restarted within the run."""
    hub = ObservedHub(seen)
    processes = Processes(config, hub, tmp_path, writes, seen, pin)
    processes.start_all()
    try:
        state = open_server_state(config)
    except Crash:
        processes.stop()
        return True
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        server.run(wait_for_clients=QUORUM_WAIT, quorum_wait=QUORUM_WAIT)
        if not server.finished:
            processes.stop()  # a party's failure first: it says why
            raise AssertionError(f"the federation did not finish: {server.stop_reason}")
    except Crash:
        processes.stop()
        return True
    except BaseException:
        processes.stop(check=False)
        raise
    finally:
        state.close()
    processes.join()
    return False


def run_crashed(
    tmp_path: Path, federation: Federation, writes: Writes, seen: Observed, pin: bytes | None
) -> None:
    """The federation with ``writes``' crashes; each time the server dies, a fresh server
    over the same files, until the federation's end. ``pin``: the key holder's key's
    fingerprint (its key file is in ``tmp_path``), None without one."""
    config = federation_config(tmp_path, federation)
    patch = pytest.MonkeyPatch()
    _record_noise(seen, patch)
    try:
        with instrumented(writes):
            for _ in range(len(writes.crashes) + 1):
                if not _federation(config, tmp_path, writes, seen, pin):
                    return
                writes.revive("server")
            raise AssertionError("the server died more often than it was crashed")
    finally:
        patch.undo()


# --- the oracles ---------------------------------------------------------------------------


def _clipped(update: np.ndarray) -> np.ndarray:
    """An update scaled into the L2 ball of radius :data:`CLIP`, as a branch sends it."""
    norm = float(np.linalg.norm(update))
    return update if norm <= CLIP else update * (CLIP / norm)


def _check_models(
    rounds: list[dict[str, Any]],
    checkpoints: dict[int, np.ndarray],
    federation: Federation,
    seen: Observed,
    what: str,
) -> None:
    """Every complete round's model: the previous one plus the learning rate times (the
    plain sum of its contributors' clipped updates + the noise drawn for it) over the
    expected cohort; an aborted round says why and stores no model."""
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
        total = sum(_clipped(TARGETS[name] - sent) for name in contributed)
        if federation.mechanism == "central":
            total = total + seen.noise[number]
        expected = model + LEARNING_RATE * total / len(NAMES)
        assert np.allclose(checkpoints[number], expected, atol=federation.tolerance), (
            f"{what}: round {number}'s model is not its contributors' sum plus its noise "
            f"({contributed}: off by {np.abs(checkpoints[number] - expected).max():.3g})"
        )
        model = checkpoints[number]


def _check_claims(
    config: FederationConfig,
    rounds: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    writes: Writes,
    what: str,
) -> None:
    """Every row's epsilon: the rounds charged up to its own, replayed. A round is
    charged when the state stored its model, or (distributed DP; central DP noised by
    the CKKS key holder) the state committed its revealed sum's charge before the round
    aborted (docs/audit.md); the test saw
    both commits itself. Central DP: the exact Gaussian epsilon in closed form of the
    most charged branch's precision; distributed: a fresh accountant of the config."""
    mechanism = config.dp.mechanism if config.dp is not None else None
    fresh = config.mechanism()
    precision: dict[str, float] = {}
    charged_any = False
    for row, entry in zip(rounds, rows, strict=True):
        report = row["report"] or {}
        number = row["number"]
        # the key holder refusing the decryption request (its whole reply: a restarted
        # one's "round already served") released nothing, so the note is dropped
        refused = "the key holder refused the decryption request" in str(report.get("reason"))
        revealed = row["status"] == "aborted" and number in writes.noted_reveal and not refused
        assert bool(report.get("revealed")) == revealed, (
            f"{what}: round {number} is {row['status']} with revealed "
            f"{report.get('revealed')}, but the test saw the reveal noted: {revealed}"
        )
        assert bool((entry.get("dp") or {}).get("sum_revealed")) == revealed, (
            f"{what}: round {number}'s ledger row says sum_revealed "
            f"{(entry.get('dp') or {}).get('sum_revealed')}, the test saw {revealed}"
        )
        if row["status"] == "complete" or revealed:
            charged_any = True
            if mechanism == "central":
                for name in row["participants"]:
                    precision[name] = precision.get(name, 0.0) + 1.0 / config.dp.noise_multiplier**2
            else:
                fresh.restore(report if row["status"] == "complete" else report["revealed"])
        claim = entry["privacy"]["epsilon"]
        if not charged_any:
            assert claim is None, f"{what}: round {number} claims {claim} before any charge"
            continue
        if mechanism == "central":
            exact = exact_gaussian_epsilon(max(precision.values()), DELTA)
            low, high = exact * (1 - 1e-9), exact * 1.01
        else:
            exact = fresh.epsilon()
            low, high = exact * (1 - 1e-9), exact * (1 + 1e-9)
        assert claim is not None and low <= claim <= high, (
            f"{what}: round {number} claims epsilon {claim}, its charged rounds give {exact}"
        )


def check_invariants(
    tmp_path: Path, federation: Federation, writes: Writes, seen: Observed, what: str
) -> None:
    store = ServerStore(tmp_path / "state.sqlite", create=False)
    try:
        rounds = store.rounds()
        checkpoints = {
            number: np.frombuffer(bytes(blob), dtype="<f8").copy()
            for number, blob in store._db.execute("SELECT round, model FROM checkpoints")
        }
    finally:
        store.close()
    complete = [r for r in rounds if r["status"] == "complete"]
    assert len(complete) == ROUNDS, f"{what}: {rounds}"
    assert all(r["status"] in ("complete", "aborted") for r in rounds), f"{what}: {rounds}"
    _check_models(rounds, checkpoints, federation, seen, what)
    # no round started or released twice, none released that the state does not hold
    assert len(seen.started) == len(set(seen.started)), f"{what}: {seen.started}"
    assert seen.started == sorted(seen.started), f"{what}: {seen.started}"
    assert len(seen.released) == len(set(seen.released)), f"{what}: {seen.released}"
    assert set(seen.released) <= {r["number"] for r in complete}, f"{what}: {seen.released}"
    # no branch trained a round twice
    assert len(seen.trained) == len(set(seen.trained)), f"{what}: {sorted(seen.trained)}"
    # the ledger verifies (also against the auditor's key file): one row per round
    ledger = tmp_path / "state.sqlite.ledger"
    public = load_public_key(tmp_path / "state.sqlite.ledger-key.pub")
    audit = verify_ledger(ledger, public_key=public)
    assert audit.ok, f"{what}: {audit.first_failure}"
    rows = [row.entry for row in audit.chain.rows]
    assert [e["round"] for e in rows] == [r["number"] for r in rounds], f"{what}: {rows}"
    _check_claims(federation_config(tmp_path, federation), rounds, rows, writes, what)
    # the key holder answered no round twice, and only rounds the state holds
    assert len(seen.decrypted) == len(set(seen.decrypted)), f"{what}: {seen.decrypted}"
    assert set(seen.decrypted) <= {r["number"] for r in rounds}, f"{what}: {seen.decrypted}"
    # a round whose noised sum the key holder sent the server is charged even if aborted:
    # its reveal was noted before the decryption request left (worktree 165: the server
    # killed before storing such a round restarted with it uncharged)
    for row in rounds:
        if row["status"] == "aborted" and row["number"] in seen.decrypted:
            assert row["number"] in writes.noted_reveal, (
                f"{what}: round {row['number']} was decrypted for the server, then aborted "
                "without its reveal noted: the noised sum it saw is charged nowhere"
            )
            # and it is charged: a sum sent is never taken for a refusal (uncharged)
            assert (row["report"] or {}).get("revealed"), (
                f"{what}: round {row['number']} was decrypted for the server, then aborted "
                f"uncharged: {row['report']}"
            )


# --- the enumeration -----------------------------------------------------------------------


def run_case(
    tmp_path: Path,
    federation: Federation,
    crashes: dict[tuple[str, int], str],
    what: str,
    pin: bytes | None = None,
    claimed: dict[tuple[str, int], Point] | None = None,
) -> Writes:
    """One case: the federation with ``crashes``, run to its end and checked; its writes.
    ``claimed``: the write each crash is meant to hit (as an earlier run numbered it);
    a crash played at another write fails the case, as one never reached does."""
    writes, seen = Writes(crashes=dict(crashes)), Observed()
    run_crashed(tmp_path, federation, writes, seen, pin)
    assert sorted(writes.fired) == sorted(crashes), f"{what}: the run never reached a write"
    for key, point in (claimed or {}).items():
        assert writes.hit[key] == point, (
            f"{what}: the crash hit another write, {writes.hit[key]}: this run numbered "
            "its writes otherwise"
        )
    check_invariants(tmp_path, federation, writes, seen, what)
    return writes


def describe(crashes: dict[tuple[str, int], str], claimed: dict[tuple[str, int], Point]) -> str:
    """The crashes of a case, each with the write it is meant to hit, for its failure's
    line."""
    return ", then ".join(
        f"{role} crashed {variant} write {k}"
        + (f" ({claimed[role, k]})" if (role, k) in claimed else "")
        for (role, k), variant in sorted(crashes.items())
    )


def recovery_writes(writes: Writes) -> list[int]:
    """The writes of the first restarted server before its first round: its recovery
    (the ledger reopened, the running round aborted, rows rebuilt from the state)."""
    server = writes.seen.get("server", [])
    if not writes.restarts:
        return []
    found = []
    for k in range(writes.restarts[0], len(server)):
        if server[k].by.startswith("begin_round"):
            break
        found.append(k)
    return found


def enumerate_crashes(
    new_folder: Callable[[str], Path],
    federation: Federation,
    roles: tuple[str, ...],
    prepare: Callable[[Path], bytes | None] = lambda folder: None,
    *,
    crash_recoveries: bool = True,
) -> tuple[dict[str, list[Point]], int, list[str]]:
    """A clean run, then one case per write of each of ``roles`` and per variant, and,
    for each case whose server restarted, one per write of that restart's recovery and
    variant (a second crash while it recovers; unless ``crash_recoveries`` is false).
    ``prepare(folder)`` readies a case's
    folder (the key holder's key) and returns the key's pin. Returns the clean run's
    writes, the number of cases and each failing case's line."""
    folder = new_folder("clean")
    points = run_case(folder, federation, {}, "the clean run", prepare(folder)).seen
    failures: list[str] = []
    ran = 0

    def attempt(
        crashes: dict[tuple[str, int], str], claimed: dict[tuple[str, int], Point]
    ) -> Writes | None:
        nonlocal ran
        ran += 1
        what = describe(crashes, claimed)
        folder = new_folder("crash")
        try:
            return run_case(folder, federation, crashes, what, prepare(folder), claimed)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
        except Exception as exc:  # every case is reported together
            failures.append(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())}")
        return None

    # each case with the write each of its crashes is meant to hit: a single crash, the
    # clean run's write of its number; a crash during a recovery, the write of its number
    # in the run of the first crash (whose restart it recovers), not the clean run's
    nested: list[tuple[dict[tuple[str, int], str], dict[tuple[str, int], Point]]] = []
    for role in roles:
        for k, point in enumerate(points[role]):
            for variant in VARIANTS[point.kind]:
                crashes, claimed = {(role, k): variant}, {(role, k): point}
                writes = attempt(crashes, claimed)
                if writes is None or role != "server" or not crash_recoveries:
                    continue
                for later in recovery_writes(writes):
                    recovering = writes.seen["server"][later]
                    for again in VARIANTS[recovering.kind]:
                        nested.append(
                            (
                                {**crashes, ("server", later): again},
                                {**claimed, ("server", later): recovering},
                            )
                        )
    for crashes, claimed in nested:
        attempt(crashes, claimed)
    return points, ran, failures
