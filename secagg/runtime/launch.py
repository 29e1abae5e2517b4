"""The one composition root: a federation's server, branches and key holder, from a config.

:func:`build_server` assembles a server with its store and ledger; the CLI
(:func:`serve`), the simulator and the benchmarks all build theirs through it.
:func:`serve` is ``secagg server --config F``: it loads the CA directory named
in the config, accepts only clients whose certificates chain to that CA, are
not revoked and name a client of the federation (each refusal is logged), and
runs the rounds. :func:`run_branch` is ``secagg client``: it dials the server
(branches accept no inbound connection), proves its identity with its own
certificate and serves rounds with its training hook.

:func:`demo_hook` is a stand-in training hook for trying a federation out: each
branch pulls the model toward a target derived from its name (its "local
optimum"), so the federated model converges to their mean. Real models plug in
through :data:`~secagg.runtime.client.TrainingHook`.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from secagg.aggregation.policy import BranchPolicy
from secagg.crypto.prg import MaskRemover
from secagg.crypto.signing import CertificateSigningKey
from secagg.crypto.stream import derive
from secagg.dp.release import REPLAY_SECONDS_PER_REPORT, mechanism_class
from secagg.durable import refuse_special_file
from secagg.errors import ConfigurationError
from secagg.ledger.chain import (
    Ledger,
    LedgerError,
    LedgerKeptChanging,
    LedgerKey,
    NotALedger,
    export_public_key,
    not_a_ledger,
    read_without_writing,
    unwritten_ledger_tables,
)
from secagg.runtime import outcome
from secagg.runtime.client import (
    ROUND_GRACE_SECONDS,
    BranchIdentity,
    ClientStats,
    FederationClient,
    TrainingHook,
)
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import (
    DEFAULT_IDLE_SECONDS,
    KeyHolderRun,
    KeyHolderService,
    bound_to_federation,
)
from secagg.runtime.server import FederationServer, RoundResult, refuse_broken_chain
from secagg.runtime.store import (
    ServerStore,
    StateError,
    StateLock,
    StateMissing,
    holds_state,
)
from secagg.transport.base import ClientEndpoint, ServerEndpoint, TransportError
from secagg.transport.grpc_limits import DEFAULT_MESSAGE_RECEIVE_SECONDS

log = logging.getLogger("secagg.network")


def demo_hook(name: str, dimension: int, step: float = 0.5) -> TrainingHook:
    """A branch whose local optimum is a fixed vector derived from its name."""
    digest = derive(b"secagg/demo/", name, size=32)
    words = np.frombuffer((digest * (8 * dimension // len(digest) + 1))[: 8 * dimension], "<u8")
    target = (words / 2.0**64 - 0.5) * 0.2

    def train(model: np.ndarray) -> np.ndarray:
        return step * (target - model)

    return train


def load_hook(spec: str, name: str, dimension: int) -> TrainingHook:
    """``"demo"`` or ``"package.module:factory"``; the factory gets (name, dimension).

    A hook with DP-SGD inside may carry a ``privacy_report`` attribute (a callable
    returning :meth:`DPSGDTrainer.privacy_report`): the branch then reports its
    record-level accounting for the server's ledger."""
    if spec == "demo":
        return demo_hook(name, dimension)
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError("a hook is 'demo' or 'package.module:factory'")
    try:
        factory: Callable[[str, int], TrainingHook] = getattr(
            importlib.import_module(module_name), attribute
        )
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load hook {spec!r}: {exc}") from None
    if not callable(factory):
        raise ConfigurationError(f"hook {spec!r} is not a factory: {attribute} is not callable")
    try:
        inspect.signature(factory).bind(name, dimension)
    except (TypeError, ValueError):  # ValueError: a builtin without a readable signature
        raise ConfigurationError(
            f"hook {spec!r}: the factory is called with (name, dimension) and must return "
            "the training function; this one does not take those two arguments"
        ) from None
    return factory(name, dimension)


def _bind_address(config: FederationConfig, port: int | None) -> str:
    """``server.bind``, or its host with ``port`` instead (tests, benchmarks: 0 = any)."""
    bind = config.server.bind
    return bind if port is None else f"{bind.rsplit(':', 1)[0]}:{port}"


def session_capacity(config: FederationConfig) -> int:
    """How many sessions the server's transport holds at once: every party (the clients
    *and* the key holder: counting the clients only refused the last of 100 branches
    and a key holder every time, and no CKKS round could start, review of 2026-12-04),
    a quarter more for sessions a mass redial opens before the ones they supersede are
    seen gone, and at least 100."""
    parties = len(config.parties)
    return max(100, parties + max(8, parties // 4))


def server_transport(
    config: FederationConfig, port: int | None = None, *, start: bool = True
) -> Any:
    """A gRPC server transport with mTLS and peer checks from the config, started
    (bound) unless ``start`` is False: :func:`serve` binds only after every check of
    the state and the server has passed, so a refused start never held the port."""
    from secagg.transport import certs
    from secagg.transport.grpc_transport import GrpcServerTransport

    directory = config.server.certificates
    allowed = list(config.parties)
    verifier = certs.PeerVerifier(directory, allowed=allowed)
    bind = _bind_address(config, port)

    def identify(context: Any) -> str:
        return verifier.identify(context.auth_context()).name

    capacity = session_capacity(config)
    max_connections = config.server.max_connections
    if max_connections is not None:
        # the transport wants more connections than sessions; a cap the config allowed
        # (min_connections: two per party + 16) still leaves a session for every party
        # and the redial margin, so only session_capacity's floor of 100 gives way
        capacity = min(capacity, max_connections - 1)
    transport = GrpcServerTransport(
        bind,
        server_credentials=certs.load_server_credentials(directory).to_grpc(),
        max_message_bytes=config.server.max_message_bytes,
        identify=identify,
        max_clients=capacity,
        # what one branch may leave unread on the server: two of its largest messages
        max_queued_bytes=2 * config.server.max_message_bytes,
        # new sessions per identity: a branch churning sessions costs the others nothing
        session_burst=config.server.session_burst or None,
        session_rate=config.server.session_rate,
        # connections before any certificate is seen: a flood of them is closed
        handshake_timeout=config.server.handshake_timeout,
        idle_connection_timeout=config.server.idle_connection_timeout,
        max_connections=max_connections,
        # a message must be whole within this long of its first chunk
        message_receive_timeout=config.server.message_receive_timeout,
    )
    if start:
        transport.start()
    return transport


def build_server(
    config: FederationConfig,
    transport: ServerEndpoint,
    state: str | Path | ServerStore,
    *,
    initial_model: np.ndarray | None = None,
    ledger_path: str | Path | None = None,
    ledger_key: LedgerKey | None = None,
    export_key_to: str | Path | None = None,
    observer: Callable[[RoundResult, np.ndarray], None] | None = None,
    ledger: Ledger | None = None,
    unmask: MaskRemover | None = None,
) -> FederationServer:
    """A server with its store and (when ``ledger_path`` or ``ledger`` is given) its
    signed ledger.

    ``state`` is a path (the store is opened, or created) or a store already opened
    and checked (:func:`open_server_state`). Without ``ledger_key`` a fresh key is
    made (a simulation's: only its public half, written to ``export_key_to``,
    outlives the run). The store and the ledger are cross-checked
    (:func:`check_state_against_ledger`) before the server recovers anything."""
    if ledger is not None and ledger_path is not None:
        raise ConfigurationError("build_server takes a ledger or a ledger_path, not both")
    if ledger is None and ledger_path is not None:
        key = ledger_key or LedgerKey.generate()
        if export_key_to is not None:
            export_public_key(key.public_key, Path(export_key_to))
        ledger = Ledger(ledger_path, key)
    store = state if isinstance(state, ServerStore) else ServerStore(state)
    if ledger is not None:
        check_state_against_ledger(store, ledger)
    return FederationServer(
        config, transport, store, initial_model, observer=observer, ledger=ledger, unmask=unmask
    )


@contextlib.contextmanager
def _cluster_unmasker(config: FederationConfig) -> Iterator[MaskRemover | None]:
    """For ``[server] unmask_on = "ray"``: Ray for the server's life (a local instance,
    or the cluster at ``ray_address``) and a :class:`~secagg.runtime.ray_slices.RayUnmasker`
    over ``unmask_workers`` workers (default: every CPU Ray sees); otherwise None (the
    threads of ``unmask_workers``)."""
    if config.server.unmask_on != "ray":
        yield None
        return
    from secagg.runtime.ray_engine import ray_session
    from secagg.runtime.ray_slices import RayUnmasker

    with ray_session(config.server.ray_address, source="[server] ray_address") as ray:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = config.server.unmask_workers or max(1, cpus)
        log.info("masks are removed by %d Ray worker(s), one coordinate slice each", workers)
        # a slice may take as long as the round, never longer: the round's own deadline
        # (RayUnmasker's 600 s default would cut a round configured longer short)
        yield RayUnmasker(workers, timeout=config.deadlines.round_seconds)


def check_state_against_ledger(
    store: ServerStore, ledger: Ledger | None, *, ledger_path: Path | None = None
) -> None:
    """Refuse a store and a ledger that do not tell the same story (reliability D4).

    Why: the store is what the server continues from, the ledger what auditors
    trust. A store older than its ledger (restored from an old copy, or emptied)
    would restart the rounds and the privacy accountant from an earlier point, so
    the ledger would under-report epsilon; a ledger that lost more than one of the
    store's finished rounds was cut back or replaced. One missing round is normal
    (a crash between the store's commit and the ledger's append) and is rebuilt
    from the store (:meth:`FederationServer._backfill_ledger`). A round the ledger
    records must be finished in the store, and as the ledger says: a store still
    running it is a copy taken while it ran (the store finishes a round before its
    ledger row is written). ``ledger=None``
    with finished rounds in the store: the ledger file (at ``ledger_path``, which the
    refusal names and says missing or empty) is lost."""
    held = store.round_numbers()
    finished = sorted(number for number, status in held.items() if status != "running")
    last_held = max(held, default=0)
    if ledger is None:
        if finished:
            # an empty file reads as "no ledger" (a new federation's placeholder), but
            # beside finished rounds a chain begun there would omit their rows and epsilon
            if ledger_path is None:
                lost = "its ledger is missing or empty"
            else:
                lost = f"its ledger {ledger_path} is {_no_ledger(ledger_path)}"
            raise StateMissing(
                f"the state {store.path} holds {len(finished)} finished rounds (up to round "
                f"{finished[-1]}) but {lost}: a new ledger would leave out their rows and "
                "epsilon; restore the ledger from a backup"
            )
        return
    refuse_broken_chain(ledger)
    recorded: dict[int, str] = {}
    for entry in ledger.entries():
        number = entry.get("round")
        if isinstance(number, int):
            recorded[number] = str(entry.get("status"))
    unknown = sorted(set(recorded) - set(held))
    if unknown:
        raise StateError(
            f"the ledger {ledger.path} records {len(recorded)} rounds (up to round "
            f"{max(recorded)}) but the state {store.path} holds {len(held)} (up to round "
            f"{last_held}): the state is older than the ledger (restored from an old copy, "
            "emptied or replaced); restore the state that goes with this ledger"
        )
    for number, status in sorted(recorded.items()):
        if held[number] == "running":
            # the state finishes a round before its ledger row is written: a state still
            # running a round the ledger ended is a copy taken while it ran (a backup of a
            # live server), restored. Taken, the restart recorded the round "server
            # restarted mid-round" against the ledger's reason, and a round the newer state
            # had charged (its sum revealed) lost its charge: the accountant went on below
            # the epsilon the ledger had claimed (review, 2026-12-06)
            raise StateError(
                f"round {number} is {status} in the ledger {ledger.path} but still running "
                f"in the state {store.path}: the state is older than the ledger (a copy "
                "taken while that round ran, restored); restore the state that goes with "
                "this ledger"
            )
        if status != held[number]:
            raise StateError(
                f"round {number} is {status} in the ledger {ledger.path} but "
                f"{held[number]} in the state {store.path}: they are not the same federation's"
            )
    lost = [number for number in finished if number not in recorded]
    if len(lost) > 1:
        raise StateError(
            f"the ledger {ledger.path} lacks {len(lost)} rounds the state {store.path} "
            f"finished (rounds {lost[0]} to {lost[-1]}): it was cut back or replaced by an "
            "older copy; restore it (one missing round is rebuilt from the state, more are not)"
        )


@dataclass(frozen=True)
class ServerState:
    """A server's state, opened and checked (:func:`open_server_state`): the store,
    which holds the state's lock, and the ledger."""

    store: ServerStore
    ledger: Ledger

    def close(self) -> None:
        """Close both and release the lock."""
        self.ledger.close()
        self.store.close()


class StateNeverStarted(StateMissing, ConfigurationError):
    """``server.state`` names no file and nothing of a federation is beside it (no
    ledger, no ledger key), without ``--init``: the config's mistake (a mistyped path) or
    the operator's (the first start without ``--init``), said naming the key, exit 2.

    Why not a failure of the state (exit 1): a federation that ran leaves its ledger and
    its key, and losing the state beside them is refused as lost (exit 1); a path that
    names nothing at all is the path-failure rule's mistake (docs/deployment.md), and a
    typo in ``[server] state`` read "no state at S: pass --init", exit 1, which invites
    starting a second federation at the mistyped path. Still a :class:`StateMissing`, so
    a program that catches that keeps catching it."""


class StateLinkBroken(StateMissing, ConfigurationError):
    """The state, its ledger or its key is a symbolic link to nothing (a disk not
    mounted, a folder moved), without ``--init``: said naming the link and where it
    leads, exit 2 (the path is the mistake, as a state folder that does not exist is).

    Why not "names no file ... pass --init" (:class:`StateNeverStarted`): a federation
    reached through links to a disk that is not mounted found none of its files, and
    that line, taken at its word, began a second federation under the empty mount point
    (its epsilon restarted) while the real one waited on the disk
    (tests/runtime/test_state_through_a_broken_link.py)."""


class StateDirectoryMissing(StateMissing, ConfigurationError):
    """``server.state`` names a file in a folder that does not exist (or is a file): the
    config's mistake, as a ``--state`` in a missing folder is ``secagg client``'s (exit 2
    naming the option), not the machine's failure.

    Why a ConfigurationError too: it was a plain :class:`StateMissing`, which ``secagg
    server`` says as a failure of its state (exit 1), while the client said the same
    mistake of its own state with exit 2 (path-failure review, 2026-12-07). Still a
    :class:`StateMissing`, so a program that catches that keeps catching it."""


def open_server_state(config: FederationConfig, *, init: bool | None = None) -> ServerState:
    """Lock, open and check ``server.state`` and its ledger; nothing binds a port here.

    Why every check is here, before :func:`serve` binds: a server that listens,
    accepts branches and only fails at its first write (a read-only or corrupt
    state, a missing directory) or, worse, starts a new federation over a lost one
    (an empty or deleted state beside an existing ledger) is what the reliability
    review found (D4, D5, D8). In order:

    1. the state's directory exists, and none of the state, its ledger and the ledger
       key is a named pipe, a device or a socket
       (:class:`~secagg.errors.NotARegularFile`, before any open); without ``--init``
       (``init=False``), a path where nothing of a federation is, no state, ledger or
       ledger key (:class:`StateNeverStarted`, a usage mistake: nothing is made);
    2. the state's lock (:class:`~secagg.runtime.store.StateLock`): a second server
       fails here, having touched nothing;
    3. ``init``: ``True`` starts a new federation (refused when the state already
       holds rounds or the ledger rows); ``False`` continues one (a missing or empty
       state is refused); ``None`` (programs and tests that own their directory):
       new only when neither the state nor its ledger exists. A missing or empty
       state beside a ledger with rows is always refused;
    4. the store opens, passes SQLite's integrity check and takes a write (rolled
       back);
    5. the ledger key and the ledger open (the key is made only for a new ledger; the
       auditor's copy of its public half, ``<key>.pub``, is written again when a crash
       left it missing or torn);
    6. store and ledger are cross-checked (:func:`check_state_against_ledger`).

    Raises :class:`~secagg.runtime.store.StateError` (one line for the operator),
    :class:`~secagg.errors.NotARegularFile`,
    :class:`~secagg.ledger.chain.NotALedger` (a file at the ledger's path that is no
    ledger at all: what it is) or :class:`~secagg.ledger.chain.LedgerError`; on error
    nothing stays open or locked.
    """
    state = Path(config.server.state)
    ledger_path = Path(config.server.state + ".ledger")
    key_path = Path(config.server.state + ".ledger-key")
    directory = state.parent
    if not directory.is_dir():
        raise StateDirectoryMissing(
            f"the state directory {directory} does not exist (server.state = "
            f"{config.server.state!r}): create it, or point server.state elsewhere"
        )
    # before anything reads their size or SQLite opens them: a named pipe is 0 bytes, so
    # it read as "no state" (--init then asked for) and SQLite's open of it failed as
    # "disk I/O error", as if the state were damaged
    for path, what in (
        (state, "a server state"),
        (ledger_path, "a ledger"),
        (key_path, "a ledger key"),
    ):
        refuse_special_file(path, what)
    broken = [path for path in (state, ledger_path, key_path) if _leads_nowhere(path)]
    if init is not True and broken:
        # said before the lock, whose file would be left beside the link
        raise StateLinkBroken(
            f"[server] state = {str(state)!r}: {broken[0]} is a symbolic link to "
            f"{os.readlink(broken[0])}, which does not exist (a disk not mounted, a folder "
            "moved): mount or restore it, or correct the link; --init would start a new "
            "federation there"
        )
    if init is False and not any(path.exists() for path in (state, ledger_path, key_path)):
        # nothing of a federation at the path: never started here, or the path is
        # mistyped (a lost federation leaves its ledger or its key, refused under the
        # lock as lost); said before the lock, whose file would be left at the typo
        raise StateNeverStarted(
            f"[server] state = {str(state)!r} names no file, and no ledger or ledger key "
            "is beside it: pass --init to start a new federation there, or correct the "
            "path (a restarted server must find its state)"
        )
    lock = StateLock(state)
    try:
        return _open_locked_state(state, ledger_path, key_path, lock, init)
    except BaseException:
        lock.release()
        raise


def _leads_nowhere(path: Path) -> bool:
    """Whether ``path`` is a symbolic link whose target (through every link) is missing.
    A link that cannot be followed for another reason (a loop, no permission) is left
    to the open that follows, which says why."""
    if not path.is_symlink():
        return False
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def _ledger_rows(path: Path, state: Path) -> int | None:
    """Rows of the ledger at ``path`` (``state``'s), or None when there is no ledger.

    Read as the audit reads it (:func:`~secagg.ledger.chain.read_without_writing`), so a
    refused start leaves the files as it found them: a plain read-only connection to a
    WAL database left empty ``-wal`` and ``-shm`` files behind, and the read-write one
    used until 2026-12-07 folded a killed server's ``-wal`` in and deleted it when it
    closed, so a start refused before the writer opened the ledger (no key, no state)
    left it whole in WAL mode with no log, which ``audit verify`` fails in place as a
    copy taken without its log.

    A file there that is no ledger at all (the state database copied over it, a file
    that is not SQLite) raises :class:`~secagg.ledger.chain.NotALedger` saying what it
    is; before, every failure read "is not a readable ledger: no such table: ledger" (or
    "file is not a database"), as if the ledger were damaged (review, 2026-12-06). A
    damaged ledger still raises :class:`~secagg.ledger.chain.LedgerError`.

    An SQLite database without any table is no ledger yet, like an empty file (None):
    it is what a server killed inside the ledger's first open leaves (SQLite wrote the
    WAL header, the schema was not committed yet). It read as "not a privacy ledger: an
    SQLite database without tables ... move the file away" at every restart, ``--init``
    or not: a federation one crash could stop for good (crash-point review, 2026-12-06).
    Holding nothing, it is cross-checked against the state as a missing ledger is. So is
    a schema cut short the same way (the ledger's tables are created one statement, one
    commit, at a time: a kill after ``ledger_meta`` left no ``ledger`` table, and every
    start read "not a readable ledger: no such table: ledger"): some of the ledger's
    own tables, not ``ledger``, every one empty."""
    if not holds_state(path):
        return None

    def count(db: sqlite3.Connection) -> int | None:
        unwritten = unwritten_ledger_tables(db)
        # no table, or only the side tables created before ``ledger``, all empty: the
        # ledger's first open did not finish (an empty ``ledger`` table is a ledger)
        if unwritten is not None and "ledger" not in unwritten:
            return None
        return int(db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0])

    try:
        return read_without_writing(path, count)
    except sqlite3.Error as exc:
        failure = exc
    except LedgerKeptChanging as exc:
        # the audit's advice ("read it again, between two rounds") is an auditor's: at
        # a start, under the state's lock, the writer is another process, which the
        # operator stops; exit 1 (LedgerError), another process being the machine's
        # side of the path rule, as a held lock is (review leftover, 2026-12-07)
        raise LedgerKeptChanging(
            f"the ledger {path} of server.state {state} kept changing while the server "
            "read it to start: another process is writing the ledger's files (a second "
            "server on this ledger, or a copy or sync tool writing beside it); stop it, "
            "then start the server again"
        ) from exc
    wrong_file = not_a_ledger(path)
    if wrong_file is not None:
        raise NotALedger(
            f"{wrong_file}; the ledger of server.state {state} belongs at that path: move "
            "the file away (and put the federation's ledger back, if it has one)"
        )
    raise LedgerError(f"{path} is not a readable ledger: {failure}")


def _no_ledger(path: Path) -> str:
    """What is at a ledger path that holds no ledger (:func:`_ledger_rows` None), in the
    words a refusal uses: "missing", "empty (0 bytes)" or an SQLite file without tables."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    return (
        "empty (0 bytes)"
        if size == 0
        else "empty (an SQLite file whose creation as a ledger did not finish)"
    )


def _lost_beside_key(state: Path, ledger_path: Path, key_path: Path, rows: int | None) -> str:
    """The refusal of a start where the ledger key is but neither a state nor ledger rows.

    Why refused, ``--init`` or not: :func:`_open_locked_state` creates the state, then
    the key, then the ledger, so no crash leaves a key without a state; the state and its
    ledger were lost (emptied, deleted, a bad restore). Started, the server signed a new
    chain from round 1 with the federation's key: it verified against the public key the
    auditors hold, and its epsilon restarted at the first round's (a federation at 8.39
    read 4.38 after one round). Before, the start went ahead (``init=None``) or the line
    said to pass ``--init``, which did that."""
    what_state = "empty (0 bytes)" if state.exists() else "missing"
    what_ledger = _no_ledger(ledger_path) if rows is None else "without rows"
    return (
        f"the state {state} is {what_state} and its ledger {ledger_path} is {what_ledger}, "
        f"but the ledger key {key_path} is there: a federation ran here and both were lost; "
        "restore them from a backup (a new ledger signed with that key would pass for that "
        "federation's with its epsilon restarted), or move the key, its .pub and the "
        "ledger's file away to start a new federation"
    )


def _open_locked_state(
    state: Path, ledger_path: Path, key_path: Path, lock: StateLock, init: bool | None
) -> ServerState:
    """Steps 3-6 of :func:`open_server_state`, under the lock."""
    ledger_rows = _ledger_rows(ledger_path, state)
    existing = holds_state(state)
    if init is None:
        init = not existing and ledger_rows is None
    if not existing and ledger_rows:
        raise StateMissing(
            f"the state {state} is {'empty' if state.exists() else 'missing'} but its "
            f"ledger {ledger_path} has {ledger_rows} rows: the state was lost; restore it "
            "from a backup (a new federation needs another server.state)"
        )
    if not existing and not ledger_rows and key_path.exists():
        # a key is made only with a new federation's ledger, after its state: a key beside
        # no state and no rows is a federation whose state and ledger were both lost
        raise StateMissing(_lost_beside_key(state, ledger_path, key_path, ledger_rows))
    if not existing and not init:
        raise StateMissing(
            f"no state at {state}: pass --init to start a new federation there "
            "(a restarted server must find its state)"
        )
    store = ServerStore(state, create=init, lock=lock)
    ledger: Ledger | None = None
    try:
        store.preflight()
        held = store.round_numbers()
        if init and existing and held:
            raise StateError(
                f"--init: the state {state} already holds a federation ({len(held)} rounds): "
                "drop --init to continue it, or choose another server.state for a new one"
            )
        if ledger_rows is None:
            # finished rounds without a ledger (missing, or emptied to 0 bytes)
            check_state_against_ledger(store, None, ledger_path=ledger_path)
        if key_path.exists():
            try:
                key = LedgerKey.load(key_path)
            except ConfigurationError as exc:
                raise StateError(str(exc)) from None
            try:  # a crash after the key's write and before its public half's left none
                key.restore_public_key_file(key_path)
            except OSError as exc:
                raise StateError(
                    f"cannot write the ledger's public key beside {key_path}: "
                    f"{exc.strerror or type(exc).__name__}"
                ) from None
        elif ledger_rows is not None:
            raise StateMissing(
                f"the ledger key {key_path} is missing: the ledger {ledger_path} cannot be "
                "continued without it; restore the key from a backup"
            )
        else:
            key = LedgerKey.load_or_create(key_path)
        ledger = Ledger(ledger_path, key)
        check_state_against_ledger(store, ledger)
    except BaseException:
        if ledger is not None:
            ledger.close()
        store.close()
        raise
    return ServerState(store, ledger)


def key_holder_service(
    config: FederationConfig,
    transport: ClientEndpoint,
    settings: dict[str, Any] | None = None,
    *,
    base_dir: Path | None = None,
) -> KeyHolderService:
    """The helper process of the configured backend (the CKKS key holder), under its own
    ``settings`` (the ``[key_holder]`` table: its policy and key file), never the server's."""
    if config.backend.key_holder is None:
        raise ConfigurationError(f"the {config.backend.name} backend has no key holder")
    settings = bound_to_federation(config, settings)  # the rounds' length is not the server's
    session = config.aggregation_backend().helper(settings, base_dir=base_dir)
    if session is None:
        raise ConfigurationError(f"the {config.backend.name} backend has no key holder")
    return KeyHolderService(config.backend.key_holder, transport, session)


def key_holder_idle(config: FederationConfig) -> float:
    """The longest the server is silent towards its key holder while it still needs it.

    Between a round's key request and its decryption request the branches train and
    mask (at most ``deadlines.round_seconds``); between a decryption and the next
    round's key request the server may wait up to ``server.quorum_wait_seconds`` for a
    quorum. A key holder idle for less left mid-round or while the server waited (the
    old default of 600 s was both the default quorum wait and the default round), and
    the federation then stopped for want of its key holder. Plus
    :data:`~secagg.runtime.client.ROUND_GRACE_SECONDS`, as a branch waits.

    And, for record-level DP-SGD, the replays of the branches' privacy reports that the
    server runs between a round's decryption and its end, before the next round's key
    request (:meth:`~secagg.dp.release.Mechanism.replay_seconds` of every branch of the
    federation): a key holder sized without them went idle while the server replayed
    a large federation's reports (400 branches at 2 s each; tests/runtime/
    test_record_replay_waits.py), and the federation stopped for want of it."""
    replays = mechanism_class(config.dp).replay_seconds(len(config.clients))
    return (
        config.server.quorum_wait_seconds
        + config.deadlines.round_seconds
        + ROUND_GRACE_SECONDS
        + replays
    )


def make_key_holder_key(config: FederationConfig, path: str | Path) -> bytes:
    """Make the federation's key-holder key (``secagg keyholder-init``); the fingerprint
    returned is what every branch pins (``key_holder_fingerprint``) before round 1."""
    return config.aggregation_backend().make_helper_key(Path(path))


def serve(
    config: FederationConfig,
    *,
    wait_for_clients: float = 60.0,
    initial_model: np.ndarray | None = None,
    port: int | None = None,
    init: bool | None = None,
) -> tuple[FederationServer, list[RoundResult]]:
    """Run the federation's remaining rounds over gRPC; returns the server and results.

    Everything that can refuse a start is done before the port is bound: the state
    is locked, opened and checked (:func:`open_server_state`; ``init`` as there),
    and the server is built (its recovery and ledger backfill included, but for a
    record-level federation's rebuilt rows, which wait for the restored reports'
    replays: :meth:`~secagg.runtime.server.FederationServer.backfill_ledger` rebuilds
    them once the port is bound, and their errors come from the run). A
    federation whose rounds are all complete is not started again: ``(server, [])``
    comes back without binding. A port that cannot be bound raises
    :class:`~secagg.transport.base.TransportError` naming ``server.bind``.

    The state's lock is held until this returns; the store and ledger stay open
    for the caller to read (close them with ``server.store.close()`` and
    ``server.ledger.close()``). The server comes back closed
    (:meth:`~secagg.runtime.server.FederationServer.close`: its background DP-SGD
    replays stopped; it runs no more rounds).
    """
    # the certificates and the bind address first: a start they refuse creates no state,
    # ledger or ledger key (before, a failed --init left all three behind, CLI audit)
    config.refuse_budget_below_one_round()
    transport = server_transport(config, port, start=False)
    state = open_server_state(config, init=init)
    server: FederationServer | None = None
    try:
        with _cluster_unmasker(config) as unmask:
            server = build_server(
                config,
                transport,
                state.store,
                initial_model=initial_model,
                ledger=state.ledger,
                unmask=unmask,
            )
            done = server.completed_rounds()
            if done >= config.rounds:
                # no bind, no run: the ledger rows the build left to rebuild after the
                # bind (record level, FederationServer.backfill_ledger) are rebuilt here
                server.backfill_ledger()
                outcome.log.info(  # the verdict, which secagg server prints itself
                    "federation %s is finished: %d of %d rounds complete",
                    config.name,
                    done,
                    config.rounds,
                )
                return server, []
            log.info(
                "state %s: %d of %d rounds complete, continuing at round %d",
                config.server.state,
                done,
                config.rounds,
                server.next_round,
            )
            bind = _bind_address(config, port)
            try:
                transport.start()
            except TransportError as exc:
                log.debug("binding %s failed: %s", bind, exc)
                raise TransportError(
                    f"cannot listen on {bind} (server.bind): {_why_not_bindable(bind)}"
                ) from None
            try:
                return server, server.run(wait_for_clients=wait_for_clients)
            finally:
                transport.stop(grace=2.0)
    except BaseException:
        state.close()
        raise
    finally:
        if server is not None:
            # returned or raised, the server runs no more rounds here (its transport is
            # stopped, or never bound): its background replays stop with it. Closed on
            # the error path only, a finished federation's restart, or a run stopped
            # early, left the restored reports replaying for nobody
            # (tests/runtime/test_record_serve_stops_replays.py)
            server.close()
        state.store.release_lock()


def _why_not_bindable(bind: str) -> str:
    """Why ``bind`` cannot be listened on, found by binding a plain socket to it.

    Why: gRPC only says "Failed to bind" (its reason goes to its own log); an operator
    needs to know whether the port is taken or the address is not this machine's."""
    import errno
    import socket

    from secagg.runtime.config import split_host_port

    generic = "the port is in use or the address is not one of this machine's"
    try:
        host, port = split_host_port(bind, "server.bind", allow_any_port=True)
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ConfigurationError:
        return generic
    except socket.gaierror as exc:
        return f"the host {bind.rsplit(':', 1)[0]} does not resolve ({exc.strerror})"
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is in use (another server, or another program)"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine"
            if exc.errno == errno.EACCES:
                return f"permission denied (port {port} needs privileges)"
            return str(exc.strerror or exc)
    return generic


def branch_identity(certificates: str | Path, name: str) -> BranchIdentity:
    """Branch ``name``'s certificate identity: its own certificate and key, and a check
    of other parties' certificates against its CA (for the active variant's signatures).

    The branch re-reads its revocation list, if it holds one, at every check."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from secagg.transport import certs

    credentials = certs.load_client_credentials(certificates, name, check_self=True)
    own = x509.load_pem_x509_certificate(credentials.certificate_chain)
    ca = credentials.root_certificates
    revocations = certs.CaLayout(Path(certificates)).revocations

    def check(der: bytes) -> str:
        revoked = certs.load_revocations(revocations) if revocations.exists() else None
        return certs.identify_peer(x509.load_der_x509_certificate(der), ca, revoked).name

    return BranchIdentity(
        certificate=own.public_bytes(serialization.Encoding.DER),
        signing_key=CertificateSigningKey.from_pem(credentials.private_key),
        check=check,
    )


def _grpc_dialer(
    target: str,
    credentials: Any,
    name_override: str | None,
    max_message_bytes: int,
    message_receive_timeout: float = DEFAULT_MESSAGE_RECEIVE_SECONDS,
) -> Callable[[float], ClientEndpoint]:
    """What a branch and the key holder redial the server with: one new TLS session per
    call, closed again when it does not connect, so a failed dial leaves no channel
    behind (the redial loops of :meth:`FederationClient.serve` and
    :meth:`KeyHolderService.serve` call it again). ``message_receive_timeout``: how long
    a message from the server may take to be whole from its first chunk."""
    from secagg.transport.grpc_transport import GrpcClientTransport

    def dial(timeout: float) -> ClientEndpoint:
        transport = GrpcClientTransport(
            target,
            channel_credentials=credentials,
            name_override=name_override,
            max_message_bytes=max_message_bytes,
            message_receive_timeout=message_receive_timeout,
        )
        try:
            transport.connect(timeout=timeout)
        except BaseException:
            transport.close()
            raise
        return transport

    return dial


def run_branch(
    target: str,
    name: str,
    hook: TrainingHook,
    certificates: str,
    *,
    policy: BranchPolicy | None = None,
    rounds: int | None = None,
    idle_timeout: float | None = 120.0,
    max_message_bytes: int = 256 * 1024 * 1024,
    message_receive_timeout: float = DEFAULT_MESSAGE_RECEIVE_SECONDS,
    name_override: str | None = None,
    connect_timeout: float = 30.0,
    reconnect: bool = True,
    give_up_after: float | None = 600.0,
    dimension: int | None = None,
    state: str | None = None,
) -> ClientStats:
    """Dial the server as branch ``name`` and serve rounds until the federation ends.

    The first session is dialled for up to ``connect_timeout`` seconds. With
    ``reconnect`` a lost session (a server restart, a network cut) is redialled
    with back-off for up to ``give_up_after`` seconds *counted from the loss*
    (None: until the server announces the federation's end): the branch misses the
    round in flight (to the server, a dropout) and takes part in the next, however
    long its session had lasted (reliability review D1). ``idle_timeout`` applies
    only between rounds (None: no limit); inside a round the branch waits for the
    round deadline the server announced (D3). See
    :meth:`~secagg.runtime.client.FederationClient.serve`.

    Returns the stats when the server announced the federation's end
    (``stats.outcome`` "finished", or "stopped" with ``stats.end_reason``: the
    federation did not finish) or when ``rounds`` rounds have ended ("rounds").
    Raises :class:`~secagg.runtime.client.BranchGaveUp` (a
    :class:`~secagg.transport.base.TransportError`) when it gave up waiting,
    :class:`~secagg.transport.base.NotAccepted` at once when the server refuses its
    certificate or the TLS handshake fails on one,
    :class:`~secagg.runtime.client.DimensionMismatch` (a
    :class:`~secagg.errors.ConfigurationError`) when the federation's model does
    not have ``dimension`` parameters (default: the hook's ``dimension`` attribute,
    if any), and :class:`~secagg.runtime.client.BranchRefused` for a round weaker
    than ``policy`` (default: the safe
    :class:`~secagg.aggregation.policy.BranchPolicy`), before anything of the update
    leaves.

    ``state`` is the branch's state file (the last round number it started, read
    before dialling: :mod:`secagg.runtime.branch_state`); one that cannot be read
    raises :class:`~secagg.runtime.branch_state.BranchStateError` (a
    :class:`~secagg.errors.ConfigurationError`). None: rounds are remembered only
    while this call runs.

    ``message_receive_timeout`` is how long a message from the server may take to be
    whole from its first chunk (the server's ``[server] message_receive_timeout``, the
    other way); past it the session ends and the branch redials.
    """
    from secagg.transport import certs

    credentials = certs.load_client_credentials(certificates, name, check_self=True).to_grpc()
    # a hook that does record-level DP (e.g. torch_hook over a DPSGDTrainer) exposes
    # privacy_report: its accountant's inputs go to the ledger
    client = FederationClient(
        name,
        hook,
        None,
        policy=policy,
        identity=branch_identity(certificates, name),
        privacy_report=getattr(hook, "privacy_report", None),
        dimension=dimension if dimension is not None else getattr(hook, "dimension", None),
        state=state,
    )

    dial = _grpc_dialer(
        target, credentials, name_override, max_message_bytes, message_receive_timeout
    )
    began = time.monotonic()
    stats = client.serve(
        dial,
        rounds=rounds,
        idle_timeout=idle_timeout,
        connect_timeout=connect_timeout,
        give_up_after=give_up_after,
        reconnect=reconnect,
    )
    outcome.log.info(  # the verdict, which secagg client prints itself
        "%s: %s after %.0f s (%d rounds completed, %d sessions)",
        name,
        stats.outcome,
        time.monotonic() - began,
        stats.rounds_completed,
        stats.sessions,
    )
    return stats


def run_key_holder(
    target: str,
    name: str,
    certificates: str,
    *,
    backend: str | None = None,
    config: FederationConfig | None = None,
    settings: dict[str, Any] | None = None,
    base_dir: Path | None = None,
    idle_timeout: float | None = None,
    connect_timeout: float = 30.0,
    give_up_after: float | None = 600.0,
    reconnect: bool = True,
    max_message_bytes: int | None = None,
    name_override: str | None = None,
    message_receive_timeout: float | None = None,
) -> KeyHolderRun:
    """Serve as the key holder ``name`` (the helper the rounds need); returns how it
    ended (:class:`~secagg.runtime.keyholder.KeyHolderRun`: the sums decrypted, and
    whether the federation finished, was stopped early, or the server fell silent).
    With ``config`` (the federation's file) the key is the one
    ``settings["key"]`` names, made for the federation by :func:`make_key_holder_key`
    (without one, a key is made at the first request for at most the federation's design
    point: a request for a weaker one is refused, not the server's choice); with only
    ``backend`` a key is made at the first request, for the server's design point within
    the key holder's own ``max_clients``, ``max_value_bound`` and ``min_precision``
    (defaults: :func:`~secagg.aggregation.keyholder_policy.configless_caps`; nothing to
    pin).

    Like a branch, the key holder dials the first session for up to
    ``connect_timeout`` seconds and, with ``reconnect``, redials a lost one (a server
    restart: the resumed server waits for its key holder) for up to ``give_up_after``
    seconds from the loss (None: until the federation's end is announced); it returns
    when the end is announced or the server is silent for ``idle_timeout``, and raises
    :class:`~secagg.runtime.keyholder.KeyHolderGaveUp` when the window runs out.
    ``name_override`` is the name checked on the server's certificate (None: the host
    of ``target``), as for :func:`run_branch`: without it a key holder could not dial
    the server by an address its certificate does not carry.
    ``max_message_bytes`` and ``message_receive_timeout`` (None: the config's
    ``[server]`` values, else 256 MiB and 3600 s) bound the messages it takes.

    ``idle_timeout`` None (the default) is the longest silence the configured server
    keeps towards its key holder (:func:`key_holder_idle`); without ``config``,
    :data:`~secagg.runtime.keyholder.DEFAULT_IDLE_SECONDS`; ``math.inf``: never (a
    server started with a ``--wait`` longer than that says nothing before round 1). A
    shorter one given with ``config`` is kept and warned about: the key holder may
    leave while the server waits for a quorum or for the branches' training."""
    from secagg.aggregation import get_backend
    from secagg.transport import certs

    if config is not None:
        chosen = config.aggregation_backend()
        if config.backend.key_holder is not None:  # the rounds' length is not the server's
            settings = bound_to_federation(config, settings)
    elif backend is not None:
        chosen = get_backend(backend)
        # no federation's design point: the helper's own caps (the CKKS key holder's)
        settings = chosen.configless_helper_settings(settings)
    else:
        raise ConfigurationError("the key holder needs the federation's config or a backend")
    helper = chosen.helper(settings, base_dir=base_dir)  # a bad key or policy: before dialling
    if helper is None:
        raise ConfigurationError(f"the {chosen.name} backend has no key holder")

    needed = key_holder_idle(config) if config is not None else None
    if idle_timeout is None:
        idle_timeout = needed if needed is not None else DEFAULT_IDLE_SECONDS
    elif needed is not None and idle_timeout < needed:
        log.warning(
            "%s: an idle timeout of %g s is shorter than the server's longest silence "
            "towards its key holder (%g s: quorum_wait_seconds + round_seconds + %g s, and "
            "under record-level DP-SGD %g s a branch for the server's replays of their "
            "privacy reports); the key holder may leave while the server waits",
            name,
            idle_timeout,
            needed,
            ROUND_GRACE_SECONDS,
            REPLAY_SECONDS_PER_REPORT,
        )
    credentials = certs.load_client_credentials(certificates, name, check_self=True).to_grpc()

    if max_message_bytes is None:  # the server's own limit when its config is at hand
        max_message_bytes = (
            config.server.max_message_bytes if config is not None else 256 * 1024 * 1024
        )
    # the server's bound on a message's time to be whole, kept the other way too (as its
    # max_message_bytes): a CKKS request is as large as the uploads the server takes
    receive_timeout = message_receive_timeout
    if receive_timeout is None:
        receive_timeout = (
            config.server.message_receive_timeout
            if config is not None
            else DEFAULT_MESSAGE_RECEIVE_SECONDS
        )
    dial = _grpc_dialer(target, credentials, name_override, max_message_bytes, receive_timeout)
    service = KeyHolderService(name, None, helper)
    began = time.monotonic()
    count = service.serve(
        dial,
        idle_timeout=None if math.isinf(idle_timeout) else idle_timeout,
        connect_timeout=connect_timeout,
        give_up_after=give_up_after,
        reconnect=reconnect,
    )
    result = KeyHolderRun(count, service.outcome or "idle", service.end_reason, service.sessions)
    outcome.log.info(  # the verdict, which secagg keyholder prints itself
        "%s: %s after %.0f s (%d decryptions, %d sessions)",
        name,
        result.outcome,
        time.monotonic() - began,
        count,
        service.sessions,
    )
    return result
