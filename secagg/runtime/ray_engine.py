"""The Ray engine: many federation clients in a few Ray actors, one real server in the driver.

Theory of operation
-------------------
Why: the in-process engine runs one :class:`~secagg.runtime.client.FederationClient`
thread per party in one Python process, so a study of thousands of participants
does not fit (memory, one interpreter lock). This engine keeps the *server* exactly
as it is (a :class:`~secagg.runtime.server.FederationServer` in the driver, driving
a :class:`~secagg.transport.base.ServerEndpoint`) and moves the *clients* into Ray
actors, the way Flower's simulation does.

:class:`RayHub` is the server's endpoint. It is a
:class:`~secagg.runtime.simnet.SimulatedNetwork` (so it keeps the same per-party
byte counts, the same dropout bookkeeping, and in-process sessions for any party
that stays in the driver, such as the CKKS key holder) whose *hosted* clients live
in :class:`ClientHost` actors, spread round-robin, one actor per CPU by default.
``send(name, payload)`` appends the bytes to the pending batch of ``name``'s host;
the batches go out as one actor call per host (:meth:`ClientHost.deliver`) when the
server next waits for a message, and at the latest within a few tens of
milliseconds; a collector thread waits on the calls (``ray.wait``) and puts what
they return into the server's inbox, the queue the in-process sessions use. So
``receive``, ``connected`` and ``session_id`` answer as the in-process hub does.

:class:`ClientHost` is sans-I/O: no thread, no clock. ``deliver(batch)`` hands each
message to its client's :meth:`FederationClient.handle`; the client's endpoint
``send()`` appends to the host's outbox, which the call returns. Local training runs
here, in the worker: each client is built in the actor by a picklable *factory*
(``factory(name, endpoint)``), e.g. the simulator's, which builds a branch's trainer
from the configuration, the branch's data and the prior.

What crosses the boundary. Between the driver and the actors, only wire bytes
(:mod:`secagg.runtime.wire`): the server's messages in, the clients' replies out;
nothing of the protocol is pickled. The actors' *constructors* receive the
factories (with the simulator: the configuration and every branch's data) through
Ray's object store, and :meth:`RayHub.probe` returns what a factory's probe reports
(the simulator's record-level epsilon). The cluster is therefore one trust domain:
this is a simulation engine, not a deployment (a deployment runs ``secagg client``
per branch over gRPC with mutual TLS).

Key material in the factories. A factory carries *seeds*, never a live
:class:`~secagg.crypto.stream.KeyedStream`: :class:`HookClient` a ``replay_seed``,
the simulator's a configuration with its ``seed``, pickled in plain into Ray's object
store (same trust domain, and a replay seed protects nothing: simulations only; keys
and masks are never seeded). Each client derives its own streams from the seed in its
host, by its name and round (:class:`~secagg.runtime.client.FederationClient`). A
factory that held a stream is refused when Ray pickles it
(:class:`~secagg.errors.StreamCopyRefused`): each host would have rebuilt a twin of
it, and the clients of two hosts drawn the same noise.

Order. Ray runs one caller's calls to one actor one at a time, in submission
order, and the collector consumes each host's results in submission order, so every
client sees the server's messages in the order they were sent and the server sees
each client's replies in the order they were made.

Dropouts. Each hosted client's endpoint is the simulated network's
:class:`~secagg.runtime.simnet._ScheduledEndpoint`, so the same schedule (seed,
round, name) makes the same branch go silent before the same message on either
engine. The host reports the vanishing (only the host knows when its client tries
to send); the driver hides the branch from ``connected()`` when the report arrives
and brings it back when the server sends it its round's end, as the in-process
network does (brought back when its client *reads* that message, a round trip to an
actor later, the next round's draw could miss it, and the same seed would not give
the same round). A report that arrives after its round's end was sent is recorded but
hides nothing, on the in-process network too (``SimulatedNetwork._vanish``).

Failures. A client whose ``handle`` raises (its policy refused a round and it stops,
a model of another dimension) leaves: its session ends (gone from ``connected()``,
no session id), as a closed connection would, and the server closes its phases
without it. A host that dies (its process killed, its node lost) ends every client it
held the same way: the round completes with what was sent or aborts below its
threshold, as for any dropouts. What the driver asks of the hosts afterwards skips it
(``client_stats``, ``peak_rss``: 0), except :meth:`RayHub.probe`, whose answers for its
clients are lost with it, and which then says so (:class:`ClientHostFailed`) rather
than answer for the others alone. A host silent to those questions for
:data:`ANSWER_SECONDS` (stuck in a hook) is failed the same way, not waited on forever.

Ray is imported only when an engine is built (:func:`require_ray`): without the
extra, the in-process engine and everything else work, and ``--engine ray`` says
in one line what to install.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError, SecAggError, StreamCopyRefused
from secagg.runtime.client import ClientStats, FederationClient, TrainingHook
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import RoundResult
from secagg.runtime.simnet import (
    DropoutEvent,
    DropoutSchedule,
    SimulatedNetwork,
    _ScheduledEndpoint,
)
from secagg.runtime.wire import (
    FEDERATION_END,
    ROUND_END,
    FederationEnd,
    RoundEnd,
    decode_message,
)
from secagg.transport.base import ClientEndpoint, NotConnected, TransportError
from secagg.transport.inprocess import InProcessHub

__all__ = [
    "RAY_EXTRA",
    "ClientFactory",
    "ClientHost",
    "ClientHostFailed",
    "ClientsRun",
    "HookClient",
    "HostedClient",
    "RayHub",
    "RayUnavailable",
    "hook_clients",
    "ray_session",
    "require_ray",
    "run_clients",
]

log = logging.getLogger("secagg.ray")

#: the one line a missing extra gets
RAY_EXTRA = "--engine ray needs the ray extra: pip install 'secagg[ray]'"

#: how long the collector waits on the actors' calls before it looks for new batches
_POLL_SECONDS = 0.05

#: how long the driver waits for a host's answer between rounds (a probe, its counters,
#: its memory), after the messages already sent to it: an hour, the simulator's round
#: deadline, which nothing a host does for a round may outlast
ANSWER_SECONDS = 3600.0


class RayUnavailable(ConfigurationError):
    """Ray is not installed, or no Ray instance could be started or reached."""


class ClientHostFailed(TransportError):
    """A client host could not build its clients (a factory raised something other than
    a :class:`~secagg.errors.ConfigurationError`, which is re-raised as one), or failed
    later (died, or stopped answering) with answers the driver asked for."""


def require_ray() -> ModuleType:
    """The ``ray`` module, or :class:`RayUnavailable` with :data:`RAY_EXTRA`."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(RAY_EXTRA) from None
    return ray


#: seconds the address check before ``ray.init`` waits to resolve a cluster's name and
#: again to open a TCP connection to it
PROBE_SECONDS = 5.0


def _host_port(address: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (or ``ray://HOST:PORT``, ``[IPv6]:PORT``) split; None for ``auto``,
    ``local`` or anything else without a port, which Ray resolves itself."""
    rest = address.strip().removeprefix("ray://").rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.removeprefix("[").removesuffix("]"), int(port)


def _resolve(host: str, port: int, timeout: float) -> list[Any]:
    """``getaddrinfo`` bounded by ``timeout`` (the resolver's own retries can take
    longer): a daemon thread asks, and is left behind if it does not answer."""
    answer: list[Any] = []
    failure: list[BaseException] = []

    def ask() -> None:
        try:
            answer.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failure.append(exc)

    thread = threading.Thread(target=ask, name="ray-address-lookup", daemon=True)
    thread.start()
    thread.join(timeout)
    if failure:
        raise failure[0]
    if not answer:
        raise TimeoutError(f"no answer from the resolver within {timeout:g} s")
    return answer


#: the environment variable ``ray.init`` joins instead of an address left out or
#: ``"auto"`` (Ray's own rule, ``ray._private.worker.init``)
RAY_ADDRESS_VARIABLE = "RAY_ADDRESS"

#: how a message names that variable as the source of the address it could not reach
RAY_ADDRESS_SOURCE = f"the {RAY_ADDRESS_VARIABLE} environment variable"


def joined_address(address: str | None, source: str | None = None) -> tuple[str | None, str | None]:
    """``(the address ray.init joins, what named it)`` for ``address`` given by
    ``source`` (a flag or a config key; None: the caller's argument): Ray replaces None
    and ``"auto"`` by :data:`RAY_ADDRESS_VARIABLE` when it is set, and then the
    environment named it; ``(None, source)`` when a local instance is started.

    Why: ``RAY_ADDRESS=127.0.0.1:1 secagg simulate --engine ray`` hung in ray.init's
    retries (killed after 150 s: no check ran, since no address was given), and an
    address Ray took from the environment was blamed on ``--ray-address``, which the
    user never typed (simulate audit, 2026-12-05)."""
    from_env = os.environ.get(RAY_ADDRESS_VARIABLE)
    if from_env and address in (None, "auto"):
        return from_env, RAY_ADDRESS_SOURCE
    return address, source


def _named(address: str, source: str | None) -> str:
    """``address`` and, if known, where it came from: ``bogus:1234 (--ray-address)``."""
    return address if source is None else f"{address} ({source})"


def check_address(
    address: str, timeout: float = PROBE_SECONDS, *, source: str | None = None
) -> None:
    """Raise :class:`RayUnavailable` unless ``address``'s host resolves and its port
    accepts a TCP connection, each within ``timeout`` seconds; the message names
    ``source``, where the address came from (a flag, a config key, or
    :data:`RAY_ADDRESS_SOURCE`: see :func:`joined_address`; None names none: the
    caller's argument).

    Why: ``ray.init(address="bogus:1234")`` retried for minutes, printing only Ray's
    own log lines (``simulate --ray-address bogus:1234`` hung past 4 minutes, CLI
    audit 2026-12-05). A reachable port is no proof of a Ray cluster; Ray's own error
    then says what it found."""
    parts = _host_port(address)
    if parts is None:
        return
    host, port = parts

    def unavailable(why: str) -> RayUnavailable:
        return RayUnavailable(f"cannot reach Ray at {_named(address, source)}: {why}")

    try:
        infos = _resolve(host, port, timeout)
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise unavailable(f"the host {host} does not resolve ({reason})") from None
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.settimeout(timeout)
                probe.connect(sockaddr)
            return
        except OSError as exc:
            last = exc
    if isinstance(last, TimeoutError | socket.timeout):
        why = f"no answer within {timeout:g} s"
    else:
        why = (last.strerror if last is not None else None) or "no address to try"
    raise unavailable(f"nothing accepts connections on {host} port {port} ({why})")


@contextmanager
def _callers_sigterm_handler_kept() -> Iterator[None]:
    """Put back a SIGTERM handler the caller installed, which ``ray.init`` replaces with
    its own ``sys.exit(15)`` (even when it fails): ``secagg simulate`` marks a stopped
    run folder ABORTED from its handler, and under Ray a SIGTERM exited 15 past it and
    left a folder presenting a result. A default handler (none installed) is left to Ray."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None
    try:
        yield
    finally:
        if callable(previous):
            signal.signal(signal.SIGTERM, previous)


#: attempts at starting a local Ray instance: Ray gives its raylet a fixed 30 s to
#: register, which a machine busy with other work can miss; a fresh start usually makes it
LOCAL_START_ATTEMPTS = 3
#: seconds between two local starts, so that the failed start's processes are gone and a
#: burst of load on the machine has a chance to pass before the next 30 s window opens
LOCAL_START_PAUSE_SECONDS = 10.0


_pause = time.sleep  # the wait between starts (a test replaces it to count the waits)


#: the thread environment (:func:`_thread_environment`) every worker of the local
#: instance :func:`ray_session` started inherits, None while no such instance is up: a
#: :class:`RayHub` then gives its actors no ``runtime_env`` of their own
_inherited_threads: dict[str, str] | None = None


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` in this process's environment for the block, restored after."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_local(ray: Any, num_cpus: int | None, options: dict[str, Any]) -> None:
    """Start a local instance, again after a failed start (each failure shut down first,
    so no half-started processes are left behind); :class:`RayUnavailable` with the last
    reason when every attempt failed.

    The instance starts with the driver's thread environment in its environment, so its
    workers inherit it (Ray sets ``OMP_NUM_THREADS`` only where it is unset). Why: an
    actor given a ``runtime_env`` of its own cannot take one of the workers Ray keeps
    started and is started through Ray's runtime-env agent, 2-4 s more per hub on the
    test machine than an actor without one (review, 2026-12-06)."""
    global _inherited_threads
    reason = ""
    threads = _thread_environment()
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            with _environment(threads):
                ray.init(num_cpus=num_cpus, include_dashboard=False, **options)
            _inherited_threads = threads
            return
        except Exception as exc:  # Ray raises RuntimeError, Exception, ValueError, ...
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            ray.shutdown()
            if attempt < LOCAL_START_ATTEMPTS:
                log.warning("Ray did not start (%s); trying again", reason)
                _pause(LOCAL_START_PAUSE_SECONDS)
    raise RayUnavailable(
        f"cannot start a local Ray instance ({LOCAL_START_ATTEMPTS} attempts): {reason}"
    )


@contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    source: str | None = None,
) -> Iterator[Any]:
    """Ray for the length of the block: a local instance (``address`` None; ``num_cpus``
    None: every core) or a connection to the cluster at ``address`` (``"auto"``, or
    ``"ray://host:10001"``); yields the ``ray`` module. With ``address`` None or
    ``"auto"`` and :data:`RAY_ADDRESS_VARIABLE` set, that cluster is joined (Ray's own
    rule), checked first like an address given. A :class:`RayUnavailable` names where
    the address it could not reach came from: ``source`` (the caller's flag or config
    key) or the environment variable (:func:`joined_address`).

    It is shut down at the end only if it was started here: a driver that already
    called ``ray.init`` (a test's fixture, a notebook) keeps its instance, and leaving
    an external cluster only disconnects this driver from it. Workers' output stays in
    their logs (``log_to_driver=False``): the engine reports what matters itself."""
    global _inherited_threads
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    target, named = joined_address(address, source)
    with _callers_sigterm_handler_kept():
        if target is None:
            _start_local(ray, num_cpus, options)
        else:
            # before Ray, which retries an unreachable address for minutes
            check_address(target, source=named)
            try:
                ray.init(address=target, **options)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
                why = f"cannot reach Ray at {_named(target, named)}: {exc}".splitlines()[0]
                raise RayUnavailable(why) from None
    try:
        yield ray
    finally:
        _inherited_threads = None
        ray.shutdown()


# --- what a host holds ----------------------------------------------------------------


@dataclass
class HostedClient:
    """A client as its host holds it: the client, and optionally a ``probe(what)`` the
    driver may call between rounds (:meth:`RayHub.probe`), for what the driver needs of
    a client besides its messages (the simulator: a branch's record-level epsilon)."""

    client: FederationClient
    probe: Callable[[str], Any] | None = None


#: builds a client in its host: ``factory(name, endpoint)``; it must be picklable
#: (a module-level function or class instance, a ``functools.partial`` of one)
ClientFactory = Callable[[str, ClientEndpoint], "HostedClient | FederationClient"]


@dataclass(frozen=True)
class HookClient:
    """A picklable recipe for a plain federation client: its training hook is built in
    its host by ``hook()`` (so a hook holding a model or data is made where it runs),
    with the branch's ``policy``, ``replay_seed`` (simulations only: replays the
    encoding's rounding; see :class:`FederationClient`) and ``dimension``."""

    hook: Callable[[], TrainingHook]
    policy: BranchPolicy | None = None
    replay_seed: bytes | None = None
    dimension: int | None = None

    def __call__(self, name: str, endpoint: ClientEndpoint) -> HostedClient:
        client = FederationClient(
            name,
            self.hook(),
            endpoint,
            policy=self.policy,
            replay_seed=self.replay_seed,
            dimension=self.dimension,
        )
        return HostedClient(client)


def hook_clients(
    hooks: Mapping[str, Callable[[], TrainingHook]],
    *,
    policy: BranchPolicy | None = None,
    replay_seed: bytes | None = None,
    dimension: int | None = None,
) -> dict[str, HookClient]:
    """``{name: HookClient(...)}`` for ``{name: hook factory}``: the factories
    :func:`run_clients` takes, e.g. ``functools.partial(demo_hook, name, d)`` per name."""
    return {
        name: HookClient(hook, policy=policy, replay_seed=replay_seed, dimension=dimension)
        for name, hook in hooks.items()
    }


class _Mailbox:
    """The innermost endpoint of a hosted client: ``send`` appends to the host's outbox;
    ``receive`` returns the one message the host is delivering."""

    def __init__(self, name: str, outbox: list[tuple[Any, ...]]) -> None:
        self.name = name
        self._outbox = outbox
        self.pending: bytes | None = None

    def send(self, payload: bytes) -> None:
        self._outbox.append(("send", self.name, bytes(payload)))

    def receive(self, timeout: float | None) -> bytes | None:
        del timeout  # sans-I/O: the host hands over the message it is delivering
        payload, self.pending = self.pending, None
        return payload


class _HostNetwork:
    """What :class:`~secagg.runtime.simnet._ScheduledEndpoint` asks of its network, on
    the host's side: a vanishing is reported to the driver (once per branch and round);
    bytes are counted, and a branch brought back, by the driver."""

    def __init__(self, schedule: DropoutSchedule | None, outbox: list[tuple[Any, ...]]) -> None:
        self.schedule = schedule
        self._outbox = outbox
        self._reported: set[tuple[str, int]] = set()

    def _vanish(self, event: DropoutEvent) -> None:
        if (event.branch, event.round) not in self._reported:
            self._reported.add((event.branch, event.round))
            self._outbox.append(("vanish", event.branch, event.round, event.phase))

    def _reappear(self, name: str) -> None:
        del name  # the driver brings it back when the server sends its round's end

    def _count_sent(self, name: str, size: int) -> None:
        del name, size  # counted by the driver, when the bytes arrive


@dataclass
class _Seat:
    hosted: HostedClient
    mailbox: _Mailbox
    endpoint: _ScheduledEndpoint
    done: bool = False  # its rounds are served, or it stopped: it handles nothing more


class ClientHost:
    """One Ray actor's clients, driven sans-I/O (see the module's theory of operation).

    ``clients`` is ``[(name, factory), ...]``; ``schedule`` the dropout schedule (None:
    none); ``rounds`` how many rounds each client serves before it stops reading, as
    ``FederationClient.run(rounds=...)`` does (None: until the federation ends)."""

    def __init__(
        self,
        clients: list[tuple[str, ClientFactory]],
        schedule: DropoutSchedule | None = None,
        rounds: int | None = None,
    ) -> None:
        self._outbox: list[tuple[Any, ...]] = []
        self._network = _HostNetwork(schedule, self._outbox)
        self._rounds = rounds
        self._seats: dict[str, _Seat] = {}
        #: (name, was a ConfigurationError, message) of the first factory that raised
        self._failure: tuple[str, bool, str] | None = None
        for name, factory in clients:
            mailbox = _Mailbox(name, self._outbox)
            endpoint = _ScheduledEndpoint(self._network, name, mailbox)  # type: ignore[arg-type]
            try:
                built = factory(name, endpoint)
            except Exception as exc:  # reported by ready(), raised by the driver
                self._failure = (name, isinstance(exc, ConfigurationError), str(exc))
                break
            hosted = built if isinstance(built, HostedClient) else HostedClient(built)
            self._seats[name] = _Seat(hosted, mailbox, endpoint)

    def ready(self) -> tuple[int, tuple[str, bool, str] | None]:
        """This worker's process id, and the factory failure, if one raised."""
        return os.getpid(), self._failure

    def deliver(self, batch: list[tuple[str, bytes]]) -> list[tuple[Any, ...]]:
        """Hand each message to its client, in order; returns what the clients did:
        ``("send", name, bytes)``, ``("vanish", name, round, phase)`` and
        ``("ended", name, reason)``, in the order it happened."""
        for name, payload in batch:
            seat = self._seats.get(name)
            if seat is None or seat.done:
                continue  # as a client thread that has returned reads nothing more
            seat.mailbox.pending = payload
            message = seat.endpoint.receive(0.0)  # the schedule's bookkeeping
            assert message is not None
            client = seat.hosted.client
            try:
                client.handle(message)
            except Exception as exc:  # it stopped (BranchRefused, DimensionMismatch, ...)
                seat.done = True
                self._outbox.append(("ended", name, f"{type(exc).__name__}: {exc}"))
                continue
            # what FederationClient.run would return with, had it read this message
            stats = client.stats
            end = _federation_end(message)
            if end is not None:
                stats.outcome = "finished" if end.finished else "stopped"
                stats.end_reason = end.reason
                seat.done = True
            elif self._rounds is not None and stats.rounds_ended >= self._rounds:
                stats.outcome = "rounds"
                seat.done = True
        out = list(self._outbox)
        self._outbox.clear()
        return out

    def probe(self, what: str) -> dict[str, Any]:
        """``{name: probe(what)}`` of every client that has a probe."""
        return {
            name: seat.hosted.probe(what)
            for name, seat in self._seats.items()
            if seat.hosted.probe is not None
        }

    def stats(self) -> dict[str, ClientStats]:
        """Each client's counters (without its last model)."""
        return {
            name: dataclasses.replace(seat.hosted.client.stats, last_model=None)
            for name, seat in self._seats.items()
        }

    def peak_rss(self) -> int:
        """This worker process's peak resident memory so far, in bytes."""
        return _peak_rss()


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


#: the variables that set the native thread pools (OpenMP, OpenBLAS, MKL) at start-up
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _thread_environment() -> dict[str, str]:
    """The driver's native thread-pool sizes, for the hosts' worker processes.

    Why: Ray starts workers with ``OMP_NUM_THREADS=1``, and a multi-threaded BLAS sums
    in another order than a single-threaded one, so numpy's results move in their last
    bits (the DP-SGD noise calibration did: epsilon 2.99469487185 in the driver,
    2.99469487186 in a worker). With the driver's sizes the hosts compute what the
    in-process engine computes on the same machine. Unset in the driver means the
    libraries' default, one thread per CPU this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    env = {name: os.environ[name] for name in _THREAD_VARIABLES if name in os.environ}
    env.setdefault("OMP_NUM_THREADS", str(cpus))
    return env


def _actor_environment() -> dict[str, Any]:
    """The hosts' ``runtime_env`` option: none when the local instance
    :func:`ray_session` started already gives every worker this process's thread
    environment (a worker Ray keeps started is used at once), else the thread
    environment for each actor (a cluster joined, or an instance the caller started)."""
    threads = _thread_environment()
    if _inherited_threads == threads:
        return {}
    return {"runtime_env": {"env_vars": threads}}


def _stream_refusal(exc: BaseException) -> StreamCopyRefused | None:
    """The :class:`~secagg.errors.StreamCopyRefused` behind ``exc`` (Ray wraps a pickling
    error in its own TypeError, the refusal as its cause), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, StreamCopyRefused):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _federation_end(payload: bytes) -> FederationEnd | None:
    """The :class:`~secagg.runtime.wire.FederationEnd` in ``payload``, else None."""
    if len(payload) < 6 or payload[5] != FEDERATION_END:
        return None
    try:
        message = decode_message(payload)
    except SecAggError:
        return None
    return message if isinstance(message, FederationEnd) else None


def _round_end(payload: bytes) -> int | None:
    """The round of a :class:`~secagg.runtime.wire.RoundEnd`, else None (the kind byte
    is read first: the driver does not decode every model it sends)."""
    if len(payload) < 6 or payload[5] != ROUND_END:
        return None
    try:
        message = decode_message(payload)
    except SecAggError:  # the client will refuse it; nothing to bring back
        return None
    return message.round if isinstance(message, RoundEnd) else None


# --- the driver's side ----------------------------------------------------------------


class RayHub(SimulatedNetwork):
    """The server's endpoint, with its hosted clients in :class:`ClientHost` actors.

    Build it inside :func:`ray_session`, then :meth:`start` the hosts; in-process
    sessions (``connect(name)``) still work for parties that stay in the driver.
    :meth:`close` (or leaving its ``with`` block) stops the collector and the actors.
    ``workers``: the number of hosts (None: one per CPU of the Ray instance);
    ``answer_seconds``: how long a question between rounds waits for a host (a host
    that does not answer in time is failed, as a dead one is)."""

    def __init__(
        self,
        schedule: DropoutSchedule | None = None,
        *,
        workers: int | None = None,
        answer_seconds: float = ANSWER_SECONDS,
    ) -> None:
        super().__init__(schedule)
        if workers is not None and workers < 1:
            raise ConfigurationError("ray workers must be at least 1")
        if not answer_seconds > 0:
            raise ConfigurationError("answer_seconds must be positive")
        self._answer_seconds = float(answer_seconds)
        self._ray = require_ray()
        if not self._ray.is_initialized():
            raise RayUnavailable("start Ray first (secagg.runtime.ray_engine.ray_session)")
        self._workers = workers
        self._hosts: list[Any] = []
        self._host_of: dict[str, int] = {}
        self._live: set[str] = set()  # hosted clients whose session is open
        self._remote_sessions: dict[str, int] = {}
        self._ended_round: dict[str, int] = {}  # the last round whose end was sent
        #: why each hosted client left, if it did
        self.ended: dict[str, str] = {}
        self.worker_pids: list[int] = []
        self._submit_lock = threading.Lock()  # pending batches and calls in flight
        self._pending: dict[int, list[tuple[str, bytes]]] = {}
        self._inflight: list[deque[Any]] = []
        #: hosts that died or whose delivery raised, and why: asked nothing more
        self._failed_hosts: dict[int, str] = {}
        self._stopping = threading.Event()
        self._collector: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------

    def start(self, clients: Mapping[str, ClientFactory], *, rounds: int | None = None) -> None:
        """Build the hosts and their clients (round-robin over the hosts, in the order
        given) and return once every client is built. A factory that raised is
        re-raised here: a :class:`~secagg.errors.ConfigurationError` as one, anything
        else as :class:`ClientHostFailed`."""
        if self._hosts:
            raise ConfigurationError("this RayHub's hosts are already started")
        if not clients:
            raise ConfigurationError("the Ray engine needs at least one client to host")
        local = set(clients) & InProcessHub.connected(self)
        if local:
            raise ConfigurationError(f"already connected in-process: {', '.join(sorted(local))}")
        ray = self._ray
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        workers = self._workers if self._workers is not None else max(1, int(cpus))
        workers = min(workers, len(clients))
        groups: list[list[tuple[str, ClientFactory]]] = [[] for _ in range(workers)]
        for index, (name, factory) in enumerate(clients.items()):
            groups[index % workers].append((name, factory))
            self._host_of[name] = index % workers
        # more hosts than CPUs share them (a whole CPU each would leave some unscheduled)
        actor = ray.remote(num_cpus=min(1.0, cpus / workers), **_actor_environment())(ClientHost)
        for group in groups:  # one by one: a refused group stops the hosts built before it
            try:
                self._hosts.append(actor.remote(group, self.schedule, rounds))
            except Exception as exc:
                self.close()
                refusal = _stream_refusal(exc)
                if refusal is None:
                    raise
                names = ", ".join(name for name, _ in group)
                # one line, without Ray's dump of the arguments (a factory's repr shows
                # its seed and its data)
                raise StreamCopyRefused(
                    f"a client factory of the host of {names} holds a KeyedStream, which "
                    f"cannot go to a host (each would rebuild a twin of it): {refusal}"
                ) from None
        self._inflight = [deque() for _ in self._hosts]
        try:
            answers = ray.get([host.ready.remote() for host in self._hosts])
        except Exception as exc:
            self.close()
            raise ClientHostFailed(f"a client host did not start: {exc}") from None
        for pid, failure in answers:
            self.worker_pids.append(pid)
            if failure is not None:
                self.close()
                name, configuration, message = failure
                if configuration:
                    raise ConfigurationError(message)
                raise ClientHostFailed(f"building {name} in its client host failed: {message}")
        with self._lock:  # session ids from the in-process hub's counter: never reused
            for name in clients:
                self._remote_sessions[name] = self._next_session
                self._next_session += 1
        with self._count_lock:
            self._live = set(clients)
        self.sessions_changed()  # connected() grew: the server's waits look again
        self._collector = threading.Thread(target=self._collect, name="ray-collector", daemon=True)
        self._collector.start()

    def close(self, drain_seconds: float = 30.0) -> None:
        """Deliver what is pending (a federation's end, so every client hears it), wait
        up to ``drain_seconds`` for the calls in flight, then stop the collector and
        the actors (their CPUs are free for the next engine at once)."""
        if self._collector is not None and self._collector.is_alive():
            self._flush()
            end = time.monotonic() + drain_seconds
            while time.monotonic() < end:
                with self._submit_lock:
                    if not any(self._inflight):
                        break
                time.sleep(0.01)
        self._stopping.set()
        if self._collector is not None:
            self._collector.join(timeout=10.0)
        for host in self._hosts:
            try:
                self._ray.kill(host)
            except Exception as exc:  # already gone
                log.debug("could not kill a client host: %s", exc)
        self._hosts = []
        with self._count_lock:
            self._live.clear()
        self.sessions_changed()  # stopped: a wait for parties ends now

    def __enter__(self) -> RayHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stopped(self) -> bool:
        """Every hosted client has left (the server then waits for no quorum)."""
        with self._count_lock:
            return bool(self._host_of) and not self._live

    @property
    def workers(self) -> int:
        """The number of client hosts started."""
        return len(self.worker_pids)

    def connect(self, name: str) -> _ScheduledEndpoint:
        """An in-process session for a party that stays in the driver (the key holder)."""
        if name in self._host_of:
            raise ConnectionError(f"client {name!r} is hosted by the Ray engine")
        return super().connect(name)

    # --- the server's side ----------------------------------------------------------

    def send(self, name: str, payload: bytes) -> None:
        if name not in self._host_of:
            super().send(name, payload)  # an in-process session (the key holder)
            return
        self._send_hosted(name, bytes(payload), None)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        """As :meth:`send`, to ``name``'s session ``session`` only (see the hub's)."""
        if name not in self._host_of:
            super().send_to_session(name, session, parts)
            return
        self._send_hosted(name, b"".join(parts), session)

    def _send_hosted(self, name: str, data: bytes, session: int | None) -> None:
        """Queue ``data`` to hosted client ``name`` (to its session ``session`` only, when
        given), checked under the lock that ends its session."""
        host = self._host_of[name]
        ended = _round_end(data)
        with self._count_lock:
            if name not in self._live:
                raise NotConnected(f"client {name!r} is not connected")
            if session is not None and self._remote_sessions.get(name) != session:
                raise NotConnected(f"client {name!r} is on another session than {session}")
            self.bytes_received[name] += len(data)
            back = False
            if ended is not None:  # it is back for the next round (see the module doc)
                self._ended_round[name] = max(ended, self._ended_round.get(name, 0))
                back = name in self._vanished
                self._vanished.discard(name)
        if back:  # connected() grew: a quorum wait may be waiting for it
            self.sessions_changed()
        with self._submit_lock:
            self._pending.setdefault(host, []).append((name, data))

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        self._flush()  # the server waits: what it sent goes out now, in one call per host
        return super().receive(timeout)

    def connected(self) -> set[str]:
        with self._count_lock:
            hosted = self._live - self._vanished
        return super().connected() | hosted

    def session_id(self, name: str) -> int | None:
        if name not in self._host_of:
            return super().session_id(name)
        with self._count_lock:
            return self._remote_sessions.get(name) if name in self._live else None

    # --- between rounds -------------------------------------------------------------

    def probe(self, what: str) -> dict[str, Any]:
        """``{name: probe(what)}`` of every hosted client with a probe. Each host answers
        after the messages sent to it before this call (one caller's calls to an actor
        run in order).

        :class:`ClientHostFailed` when a host has failed (now or earlier), naming its
        clients: what they would answer (the simulator: a branch's record-level
        epsilon) is lost with it, and a merge without them would pass for every
        client's (the largest epsilon reported could be below theirs)."""
        merged: dict[str, Any] = {}
        for answer in self._ask_live_hosts(lambda host: host.probe.remote(what)).values():
            merged.update(answer)
        lost = sorted(name for name, host in self._host_of.items() if host in self._failed_hosts)
        if lost:
            shown = ", ".join(lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
            why = self._failed_hosts[self._host_of[lost[0]]]
            raise ClientHostFailed(f"no {what!r} answer from {shown}: {why}")
        return merged

    def client_stats(self) -> dict[str, ClientStats]:
        """The counters of every client whose host has not failed (a failed host's
        clients are in :attr:`ended`, with why)."""
        merged: dict[str, ClientStats] = {}
        for answer in self._ask_live_hosts(lambda host: host.stats.remote()).values():
            merged.update(answer)
        return merged

    def peak_rss(self) -> list[int]:
        """Each host's peak resident memory so far (bytes), in host order; 0 for a host
        that failed (its process is gone, or it is asked nothing more)."""
        measured = self._ask_live_hosts(lambda host: host.peak_rss.remote())
        return [int(measured.get(index, 0)) for index in range(len(self._hosts))]

    def _ask_live_hosts(self, call: Callable[[Any], Any]) -> dict[int, Any]:
        """``{host index: call(host)'s answer}`` of every host not failed, each after
        the batches already sent to it. A host found dead now, or silent for
        ``answer_seconds`` (from the question), is failed here (its clients leave, as
        when the collector finds a dead one) and left out.

        Why: a host killed mid-run (its process gone) made every later question to the
        hosts raise Ray's ActorDiedError: ``run_clients`` lost the whole run at its
        memory reading, after the server had closed its rounds without that host. And a
        host stuck in a branch's hook (the server had closed the round without it) held
        the simulator's epsilon probe for as long, forever for a hook that never
        returns, where the in-process engine went on."""
        self._flush()
        with self._submit_lock:
            asked = [
                (index, call(host))
                for index, host in enumerate(self._hosts)
                if index not in self._failed_hosts
            ]
        answers: dict[int, Any] = {}
        deadline = time.monotonic() + self._answer_seconds
        for index, ref in asked:
            try:
                answers[index] = self._ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
            except self._ray.exceptions.RayActorError as exc:  # its process is gone
                self._host_failed(index, exc)
            except self._ray.exceptions.GetTimeoutError:
                silent = TimeoutError(f"no answer within {self._answer_seconds:g} s")
                self._host_failed(index, silent)
        return answers

    # --- the collector --------------------------------------------------------------

    def _flush(self) -> None:
        """Submit every host's pending batch as one call (in the order sent)."""
        with self._submit_lock:
            pending, self._pending = self._pending, {}
            for host, batch in pending.items():
                if host < len(self._hosts) and host not in self._failed_hosts:
                    self._inflight[host].append(self._hosts[host].deliver.remote(batch))

    def _collect(self) -> None:
        """Flush, wait on the calls in flight, and take their results in each host's
        submission order, until :meth:`close`. Nothing it meets may stop it: the
        server would otherwise wait out its deadlines for replies that never come."""
        while not self._stopping.is_set():
            try:
                self._collect_once()
            except Exception:  # a bug; log it and go on (a host's failure is handled)
                log.exception("the Ray engine's collector failed; continuing")
                self._stopping.wait(_POLL_SECONDS)

    def _collect_once(self) -> None:
        """One turn: submit what is pending, wait up to :data:`_POLL_SECONDS` for a call
        to finish, and take every finished call's events, each host's in order."""
        ray = self._ray
        self._flush()
        with self._submit_lock:
            refs = [ref for calls in self._inflight for ref in calls]
        if not refs:
            self._stopping.wait(_POLL_SECONDS / 2)
            return
        first, _ = ray.wait(refs, num_returns=1, timeout=_POLL_SECONDS)
        if not first:
            return
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        done = set(ready)
        for host, calls in enumerate(self._inflight):
            while True:
                with self._submit_lock:
                    if not calls or calls[0] not in done:
                        break
                    ref = calls[0]
                try:
                    events = ray.get(ref)
                except Exception as exc:  # the actor died, or deliver itself failed
                    self._host_failed(host, exc)
                    break
                with self._submit_lock:
                    calls.popleft()
                self._take(events)

    def _take(self, events: list[tuple[Any, ...]]) -> None:
        for event in events:
            kind, name = event[0], event[1]
            if kind == "send":
                payload = event[2]
                with self._count_lock:
                    if name not in self._live:
                        continue
                    self.bytes_sent[name] += len(payload)
                self._to_server.put((name, payload))
            elif kind == "vanish":
                self._remote_vanish(DropoutEvent(event[2], name, event[3]))
            elif kind == "ended":
                self._end(name, event[2])

    def _remote_vanish(self, event: DropoutEvent) -> None:
        with self._count_lock:
            if self._ended_round.get(event.branch, 0) >= event.round:
                self.dropouts.append(event)  # its round has ended: recorded, hides nothing
                return
        self._vanish(event)

    def _end(self, name: str, reason: str) -> None:
        with self._count_lock:
            self._live.discard(name)
            self.ended[name] = reason
        log.warning("%s left the federation: %s", name, reason)
        self.wake_server()  # its session has ended: the server looks at once

    def _host_failed(self, host: int, exc: BaseException) -> None:
        reason = f"its client host failed: {type(exc).__name__}: {exc}".splitlines()[0]
        with self._submit_lock:
            self._failed_hosts.setdefault(host, reason)
            self._inflight[host].clear()
            self._pending.pop(host, None)
        for name, index in self._host_of.items():
            if index == host and name in self._live:
                self._end(name, reason)


# --- a federation of hosted clients -----------------------------------------------------


@dataclass
class ClientsRun:
    """What :func:`run_clients` measured."""

    engine: str
    results: list[RoundResult]
    model: np.ndarray
    finished: bool
    stop_reason: str | None
    dropouts: list[DropoutEvent]
    bytes_sent: dict[str, int]  # per client, to the server
    bytes_received: dict[str, int]  # per client, from the server
    #: building the clients (and, with Ray, starting the hosts), before the first round
    setup_seconds: float
    #: the server's rounds, from the first round's draw to the federation's end
    run_seconds: float
    workers: int  # client hosts (0: the in-process engine)
    #: each host's peak resident memory in bytes (empty for the in-process engine)
    worker_peak_rss: list[int] = field(default_factory=list)
    #: the driver's peak resident memory in bytes (the in-process engine: everything)
    driver_peak_rss: int = 0
    client_stats: dict[str, ClientStats] = field(default_factory=dict)
    #: clients that left the federation (Ray engine: a client that raised, or whose host
    #: died), and why
    left: dict[str, str] = field(default_factory=dict)


ENGINES = ("inprocess", "ray")


def run_clients(
    config: FederationConfig,
    clients: Mapping[str, ClientFactory],
    state: str | Path,
    *,
    engine: str = "ray",
    schedule: DropoutSchedule | None = None,
    workers: int | None = None,
    address: str | None = None,
    initial_model: np.ndarray | None = None,
    max_attempts: int | None = None,
    wait_for_clients: float = 60.0,
    idle_timeout: float = 600.0,
) -> ClientsRun:
    """Run ``config``'s federation with a real server in this process and ``clients``
    (``{name: factory}``, e.g. :func:`hook_clients`) on ``engine``: ``"ray"`` (client
    hosts in Ray actors; Ray is started, or joined at ``address``, unless it already
    runs) or ``"inprocess"`` (one thread per client over the simulated network), with
    the same dropout ``schedule`` on either. The server's store is at ``state`` (no
    ledger). For benchmarks and tests: ``secagg bench scale`` compares the engines'
    wall time and memory with it. A backend with a helper (CKKS) is not supported here
    (the simulator runs its key holder itself)."""
    if engine not in ENGINES:
        raise ConfigurationError(f"engine must be one of {ENGINES}, not {engine!r}")
    if config.backend.key_holder is not None:
        raise ConfigurationError("run_clients runs no key holder: use a masking or plain backend")
    from secagg.runtime.launch import build_server

    if engine == "inprocess":
        return _run_in_process(
            config,
            clients,
            state,
            schedule=schedule,
            initial_model=initial_model,
            max_attempts=max_attempts,
            wait_for_clients=wait_for_clients,
            idle_timeout=idle_timeout,
        )
    with ray_session(address), RayHub(schedule, workers=workers) as hub:
        began = time.perf_counter()
        hub.start(clients)
        server = build_server(config, hub, state, initial_model=initial_model)
        started = time.perf_counter()
        results = server.run(wait_for_clients, max_attempts=max_attempts)
        finished = time.perf_counter()
        rss = hub.peak_rss()
        stats = hub.client_stats()
        return ClientsRun(
            engine="ray",
            results=results,
            model=server.model.copy(),
            finished=server.finished,
            stop_reason=server.stop_reason,
            dropouts=list(hub.dropouts),
            bytes_sent=dict(hub.bytes_sent),
            bytes_received=dict(hub.bytes_received),
            setup_seconds=started - began,
            run_seconds=finished - started,
            workers=hub.workers,
            worker_peak_rss=rss,
            driver_peak_rss=_peak_rss(),
            client_stats=stats,
            left=dict(hub.ended),
        )


def _run_in_process(
    config: FederationConfig,
    clients: Mapping[str, ClientFactory],
    state: str | Path,
    *,
    schedule: DropoutSchedule | None,
    initial_model: np.ndarray | None,
    max_attempts: int | None,
    wait_for_clients: float,
    idle_timeout: float,
) -> ClientsRun:
    """:func:`run_clients` on the in-process engine: the simulator's default."""
    from secagg.runtime.launch import build_server

    network = SimulatedNetwork(schedule)
    began = time.perf_counter()
    hosted: dict[str, HostedClient] = {}
    for name, factory in clients.items():
        built = factory(name, network.connect(name))
        hosted[name] = built if isinstance(built, HostedClient) else HostedClient(built)
    threads = [
        threading.Thread(
            target=h.client.run,
            kwargs={"idle_timeout": idle_timeout},
            name=f"client-{name}",
            daemon=True,
        )
        for name, h in hosted.items()
    ]
    for thread in threads:
        thread.start()
    server = build_server(config, network, state, initial_model=initial_model)
    started = time.perf_counter()
    results = server.run(wait_for_clients, max_attempts=max_attempts)
    finished = time.perf_counter()
    for thread in threads:
        thread.join(timeout=5.0)
    return ClientsRun(
        engine="inprocess",
        results=results,
        model=server.model.copy(),
        finished=server.finished,
        stop_reason=server.stop_reason,
        dropouts=list(network.dropouts),
        bytes_sent=dict(network.bytes_sent),
        bytes_received=dict(network.bytes_received),
        setup_seconds=started - began,
        run_seconds=finished - started,
        workers=0,
        driver_peak_rss=_peak_rss(),
        client_stats={
            name: dataclasses.replace(h.client.stats, last_model=None) for name, h in hosted.items()
        },
    )
