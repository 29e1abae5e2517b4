"""The client end of the gRPC transport: dial the server, keep one session, send, receive.

:class:`GrpcClientTransport` dials (diagnosing a failure with
:mod:`secagg.transport.grpc_dial`), opens the one session stream, writes what
:meth:`~GrpcClientTransport.send` queues and reassembles the server's messages, within
budgets of unread and unsent bytes of its own (a server cannot grow a branch without
end).

Why a module of its own: a branch or a key holder needs only this side, and its life
(one dial, one session, then a new transport) is simpler than the server's. The
contract is specified in :mod:`secagg.transport.grpc_transport`, from which every name
here is also importable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any, Final

import grpc

from secagg.errors import ConfigurationError
from secagg.transport.base import NotConnected, TransportError, waitable_seconds
from secagg.transport.framing import (
    DEFAULT_CHUNK_BYTES,
    HEADER_BYTES,
    MalformedFrame,
    MessageTooLarge,
    Reassembler,
    _as_bytes,
    _check_sizes,
    _grpc_size_options,
    encode_frames,
)
from secagg.transport.grpc_dial import (
    _certificate_refused,
    _checked_name,
    _dial_failure,
    _install_closed_channel_filter,
    _still_listening,
    _unknown_host,
    _waited,
)
from secagg.transport.grpc_errors import (
    ClosedAfterHandshake,
    HandshakeFailed,
    InboxOverflow,
    OutboxOverflow,
    TransportClosed,
    _closed,
)
from secagg.transport.grpc_limits import (
    _CLIENT_KEEPALIVE,
    _CLIENT_OWN_CONNECTION,
    _CLIENT_RECONNECT,
    _END,
    _PROBE_METHOD,
    DEFAULT_MAX_INBOX_MESSAGES,
    DEFAULT_MESSAGE_RECEIVE_SECONDS,
    IDENTITY_METADATA_KEY,
    SESSION_METHOD,
    _check_timer_seconds,
    _outbox_overrun,
    _queue_budgets,
)
from secagg.transport.waiting import STOP_LOOK_SECONDS, raise_if_stop_asked

#: one logger for the whole gRPC transport (the name operators' log settings and the
#: tests address), whichever of its modules logs
logger = logging.getLogger("secagg.transport.grpc_transport")


#: how long closing a client session waits for its reader thread after the cancel
_READER_JOIN_SECONDS: Final = 30.0


class GrpcClientTransport:
    """The client end: dials the server, keeps one session open, sends and receives.

    ``name_override`` is the name to check the server certificate against when the
    dialled ``target`` is not in it (an IP address, a tunnel); it sets gRPC's
    ``grpc.ssl_target_name_override`` and means nothing without TLS. One instance
    is one session: after :meth:`close` or a failure, make a new one.

    Memory. What the server sent and :meth:`receive` has not taken yet is held for
    at most ``max_queued_messages`` messages (default 1024) and ``max_queued_bytes``
    bytes (default: twice ``max_message_bytes``, at least 64 MiB), the message being
    received included. A server that sends more (a flood while the branch trains,
    say) ends its own session: the client cancels the call with
    ``RESOURCE_EXHAUSTED``, drops what it held, and :meth:`receive` raises
    :class:`InboxOverflow`, a :class:`~secagg.transport.base.NotConnected`. The other
    way, the bytes :meth:`send` queued behind the message being written (a server that
    does not read grants no HTTP/2 window) may not exceed ``max_outbox_bytes`` (same
    default): the send that would is refused with :class:`OutboxOverflow` and the
    session ended, as the server does to a branch that does not read.

    Time. A message from the server must be whole within ``message_receive_timeout``
    seconds of its first frame (default :data:`DEFAULT_MESSAGE_RECEIVE_SECONDS`; None:
    no limit); one that is not ends the session (``DEADLINE_EXCEEDED``, the partial
    message dropped, the messages before it still returned), so a server sending a
    message a frame at a time cannot park up to ``max_queued_bytes`` in a branch for
    as long as it keeps the connection.
    """

    def __init__(
        self,
        target: str,
        *,
        channel_credentials: grpc.ChannelCredentials | None,
        name_override: str | None = None,
        max_message_bytes: int,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        allow_insecure: bool = False,
        max_queued_messages: int = DEFAULT_MAX_INBOX_MESSAGES,
        max_queued_bytes: int | None = None,
        max_outbox_bytes: int | None = None,
        message_receive_timeout: float | None = DEFAULT_MESSAGE_RECEIVE_SECONDS,
    ) -> None:
        _check_sizes(max_message_bytes, chunk_bytes)
        _check_timer_seconds("message_receive_timeout", message_receive_timeout)
        self._message_receive_timeout = message_receive_timeout
        if channel_credentials is None and not allow_insecure:
            raise ConfigurationError("a client without TLS credentials needs allow_insecure=True")
        max_queued_bytes, max_outbox_bytes = _queue_budgets(
            max_message_bytes, max_queued_messages, max_queued_bytes, max_outbox_bytes
        )
        self._max_outbox_bytes = max_outbox_bytes
        self._outbox_bytes = 0  # queued by send(), writing not begun
        self._max_queued_messages = max_queued_messages
        self._max_queued_bytes = max_queued_bytes
        self._queued_messages = 0  # in the inbox, not yet taken by receive()
        self._queued_bytes = 0  # their payload bytes
        self._target = target
        self._credentials = channel_credentials
        self._options: list[tuple[str, int | str]] = []  # the channel's, set by connect()
        self._name_override = name_override
        self._max_message_bytes = max_message_bytes
        self._chunk_bytes = chunk_bytes
        self._lock = threading.Lock()
        # SimpleQueue both: a stop in send's put keeps no lock, and a Ctrl-C in receive's
        # wait arrives as itself (see transport.waiting)
        # messages unnumbered: _requests numbers them as it writes them (see there)
        self._outbox: queue.SimpleQueue[bytes | object] = queue.SimpleQueue()
        self._inbox: queue.SimpleQueue[bytes | TransportClosed] = queue.SimpleQueue()
        self._channel: grpc.Channel | None = None
        # grpc's stream object is at once a Call, a Future and the iterator of responses;
        # grpcio has no type for that combination.
        self._call: Any = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._ended: TransportClosed | None = None  # set once the stream is over
        self._closed = False
        self.identity: str | None = None  # the name the server identified us as

    def connect(self, timeout: float = 10.0) -> str:
        """Dial, open the session, and return the name the server gave us.

        Returns only once the server accepted the stream (its initial metadata
        arrived), so a refused certificate or identity fails here, not later.
        """
        deadline = time.monotonic() + min(timeout, threading.TIMEOUT_MAX)  # waitable_seconds
        if (unknown := _unknown_host(self._target, timeout)) is not None:
            raise unknown  # nothing dialled: this transport is as it was
        with self._lock:
            if self._channel is not None or self._closed:
                raise TransportError("connect() is called once per transport")
            options: list[tuple[str, int | str]] = [
                *_grpc_size_options(self._chunk_bytes),
                *_CLIENT_KEEPALIVE,
                *_CLIENT_RECONNECT,
                *_CLIENT_OWN_CONNECTION,
            ]
            checked = _checked_name(self._target, self._name_override)
            if checked is not None:
                options.append(("grpc.ssl_target_name_override", checked))
            self._options = options
            channel = self._new_channel()
            self._channel = channel
        failure = self._wait_until_ready(channel, deadline, timeout)
        if failure is not None:
            self._abandon()
            raise failure from None
        stream = channel.stream_stream(
            SESSION_METHOD, request_serializer=None, response_deserializer=None
        )
        call = stream(self._requests())  # no deadline: the session lives as long as the round
        self._call = call
        self._reader = threading.Thread(
            target=self._read, args=(call,), name="secagg-grpc-client-read", daemon=True
        )
        self._reader.start()
        while not self._ready.wait(min(STOP_LOOK_SECONDS, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                self._abandon()
                raise NotConnected(f"no session with {self._target} within {_waited(timeout)} s")
            raise_if_stop_asked()  # the caller closes the transport (launch._grpc_dialer)
        if self._ended is not None:
            self._abandon()
            raise _closed(self._ended.code, self._ended.details)
        assert self.identity is not None
        return self.identity

    def _new_channel(self) -> grpc.Channel:
        """A channel to the target with this transport's credentials and options."""
        _install_closed_channel_filter()  # its poller's end is no traceback
        if self._credentials is None:
            return grpc.insecure_channel(self._target, options=self._options)
        return grpc.secure_channel(self._target, self._credentials, options=self._options)

    def _wait_until_ready(
        self, channel: grpc.Channel, deadline: float, timeout: float, *, confirm: bool = True
    ) -> NotConnected | None:
        """Wait for the channel to connect; None once it has, else why it did not.

        A failed attempt is examined as it happens: a certificate the other side
        refuses (or one we refuse) fails every later attempt too, so it is reported
        at once as :class:`HandshakeFailed`. Waiting it out made a branch holding
        another CA's certificate hear "TLS handshake failed" only after its whole
        ``--connect-timeout`` (30 s by default). A server that closes right after the
        handshake (:class:`ClosedAfterHandshake`: how TLS 1.3 shows the server refusing
        this party's certificate, another CA's or an expired one) is dialled once more
        on a fresh channel (``confirm``), gRPC keeping a failed channel in
        TRANSIENT_FAILURE without reporting its later attempts; the same again is a
        refusal, reported at once too (review, 2026-12-05: it waited out the timeout).
        Anything else (nobody listening yet, a connection reset) may pass, so gRPC
        keeps redialling until the deadline and the last attempt's cause is reported
        then."""
        states: queue.SimpleQueue[grpc.ChannelConnectivity] = queue.SimpleQueue()
        watch = states.put  # the one callable object, so that unsubscribe finds it
        channel.subscribe(watch, try_to_connect=True)
        try:
            while (left := deadline - time.monotonic()) > 0:
                raise_if_stop_asked()  # a stop gRPC's C core swallowed: no dial on for it
                try:
                    state = states.get(timeout=min(left, STOP_LOOK_SECONDS))
                except queue.Empty:
                    continue  # the loop's condition ends it at the deadline
                if state is grpc.ChannelConnectivity.READY:
                    return None
                if state is grpc.ChannelConnectivity.SHUTDOWN:  # closed under us
                    break
                if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                    failure = _dial_failure(
                        self._target,
                        timeout,
                        self._probe(channel),
                        _checked_name(self._target, self._name_override),
                    )
                    if isinstance(failure, HandshakeFailed):
                        return failure
                    if not confirm:
                        return failure  # the confirming dial's verdict: its first attempt
                    if (
                        isinstance(failure, ClosedAfterHandshake)
                        and self._closed_again(deadline, timeout)
                        and _still_listening(self._target)  # else: the server went away
                    ):
                        return _certificate_refused(self._target, failure)
        finally:
            channel.unsubscribe(watch)
        checked = _checked_name(self._target, self._name_override)
        return _dial_failure(self._target, timeout, self._probe(channel), checked)

    def _closed_again(self, deadline: float, timeout: float) -> bool:
        """Dial once more on a fresh channel: whether the server closed that connection
        right after the handshake too (a stopping server would refuse or accept it)."""
        channel = self._new_channel()
        try:
            again = self._wait_until_ready(channel, deadline, timeout, confirm=False)
        finally:
            channel.close()
        return isinstance(again, ClosedAfterHandshake)

    @staticmethod
    def _probe(channel: grpc.Channel) -> str:
        """The channel's last connection error, from a call that fails at once (no
        session is opened: the method does not exist); "" if the call says nothing."""
        try:
            probe = channel.unary_unary(
                _PROBE_METHOD, request_serializer=None, response_deserializer=None
            )
            probe(b"", timeout=2.0, wait_for_ready=False)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                return str(exc.details() or "")
        except Exception:  # the probe only improves a message; it must not replace it
            logger.debug("dial probe failed", exc_info=True)
        return ""

    def send(self, payload: bytes) -> None:
        """Queue one message to the server; raises once the session is over."""
        data = _as_bytes(payload)
        if len(data) > self._max_message_bytes:
            raise MessageTooLarge(
                f"{len(data)} bytes exceed the limit of {self._max_message_bytes}"
            )
        with self._lock:
            if self._call is None or self._closed:
                raise NotConnected("no open session")
            if self._ended is not None:
                raise _closed(self._ended.code, self._ended.details)
            overrun = _outbox_overrun(self._max_outbox_bytes, self._outbox_bytes, len(data))
            if overrun is None:
                self._outbox.put(data)
                self._outbox_bytes += len(data)
                return
        reason = f"{overrun}: the server is not reading"
        logger.warning("ending the session with %s: %s", self._target, reason)
        self._call.cancel()  # the request generator waits in gRPC's flow control
        self._end(TransportClosed(grpc.StatusCode.CANCELLED, f"ended locally: {reason}"))
        with self._lock:
            while True:
                try:
                    self._outbox.get_nowait()
                except queue.Empty:
                    break
            self._outbox_bytes = 0
        self._outbox.put(_END)
        raise OutboxOverflow(f"session with {self._target} ended: {reason}")

    def receive(self, timeout: float | None = None) -> bytes | None:
        """The next message from the server; None on timeout; raises once the session is over.

        Messages that arrived before the end are still returned first. A stop asked of
        the process (:func:`~secagg.transport.waiting.ask_stop`) is raised from here
        within :data:`~secagg.transport.waiting.STOP_LOOK_SECONDS`, whatever the timeout
        (a branch with ``--idle inf`` waits here without end between rounds).
        """
        if self._call is None:
            raise NotConnected("no open session")
        timeout = waitable_seconds(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            raise_if_stop_asked()
            left = STOP_LOOK_SECONDS
            if deadline is not None:
                left = max(0.0, min(left, deadline - time.monotonic()))
            try:
                item = self._inbox.get(timeout=left)
                break
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
        if isinstance(item, TransportClosed):
            self._inbox.put(item)  # every later call raises too
            if isinstance(item, InboxOverflow):
                raise InboxOverflow(item.code, item.details)
            raise _closed(item.code, item.details)
        with self._lock:  # max(): a purge may have zeroed them while this one was taken
            self._queued_messages = max(0, self._queued_messages - 1)
            self._queued_bytes = max(0, self._queued_bytes - len(item))
        return item

    @property
    def queued(self) -> tuple[int, int]:
        """Messages from the server held unread, and their bytes (for monitoring, tests)."""
        with self._lock:
            return self._queued_messages, self._queued_bytes

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, half-close, wait up to ``timeout`` for the server, then
        drop; a session the server has not accepted yet is dropped at once.

        Why at once: a party stopped by Ctrl-C or SIGTERM while it dials leaves
        :meth:`connect` and is closed by its dialler; the reader then waits for the
        server's answer, and a server holding the session unanswered (its handler threads
        busy) kept the party the whole ``timeout`` (5 s) before its one line (review of
        the transport's intake, 2026-12-07). Nothing waits to be written then: a session
        is used only once :meth:`connect` has returned, after the answer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._outbox.put(_END)
        if self._reader is not None and self.identity is not None:
            self._reader.join(timeout)
        self._abandon()

    def __enter__(self) -> GrpcClientTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _abandon(self) -> None:
        """Cancel the stream, close the channel and wait for the reader (idempotent).

        The reader is joined, not left running: a daemon thread still inside gRPC's C
        core when the interpreter finalizes can deadlock gRPC's own shutdown, and the
        process then never exits (a branch that had printed "finished" hung at exit in
        CI). The cancel ends the reader's iteration at once, so the wait is short; its
        bound only keeps a wedged gRPC from wedging the caller too.
        """
        self._outbox.put(_END)
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            self._channel.close()
        self._end(TransportClosed(grpc.StatusCode.CANCELLED, "closed locally"))
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(_READER_JOIN_SECONDS)
            if reader.is_alive():
                logger.warning("the session reader of %s did not stop", self._target)

    def _requests(self) -> Iterator[bytes]:
        """Request generator, consumed by a gRPC thread: drain the outbox into frames.

        The messages are numbered here, as they are written, not by :meth:`send`. Why: a
        stop (Ctrl-C, the party's SIGTERM) in ``send`` between its put and its count of
        the id queued a message whose id the next send repeated, and the server ended
        the session over it ("message id N, expected N+1"); no signal's handler runs in
        this thread, so the ids are consecutive whatever stopped a send (second review of
        the stop handling, 2026-12-07). One session a transport: they start at 0."""
        message_id = 0
        while True:
            payload = self._outbox.get()
            if payload is _END:
                return  # half-close
            assert isinstance(payload, bytes)
            with self._lock:  # being written now: the cap is on what waits behind it
                self._outbox_bytes = max(0, self._outbox_bytes - len(payload))
            yield from encode_frames(message_id, payload, self._chunk_bytes)
            message_id += 1

    def _read(self, call: Any) -> None:
        """Reader thread: wait for acceptance, then reassemble the server's messages."""
        reassembler = Reassembler(self._max_message_bytes, self._chunk_bytes)
        overdue: threading.Timer | None = None  # the deadline of the message being received
        try:
            metadata = call.initial_metadata() or ()
            for key, value in metadata:
                if key == IDENTITY_METADATA_KEY and isinstance(value, bytes):
                    self.identity = value.decode("utf-8", "replace")
            if self.identity is None:  # the stream ended before the server accepted it
                for _ in call:
                    pass
                raise TransportClosed(grpc.StatusCode.UNKNOWN, "session was not accepted")
            self._ready.set()
            for frame in call:
                if not self._room_for(reassembler.buffered + max(0, len(frame) - HEADER_BYTES)):
                    raise self._overflow(reassembler.buffered + len(frame) - HEADER_BYTES)
                message = reassembler.feed(frame)
                if reassembler.partial and overdue is None:  # this frame began a message
                    overdue = self._watch_message(call)
                if message is not None:
                    if overdue is not None:
                        overdue.cancel()
                        overdue = None
                    with self._lock:
                        if self._ended is not None:
                            break  # closed locally meanwhile: nothing more is delivered
                        self._queued_messages += 1
                        self._queued_bytes += len(message)
                    self._inbox.put(message)
            if reassembler.partial:
                # a server of this transport ends its stream between messages only: one
                # that ends it mid-way cut a message off, which was dropped without a word
                # under the same words as a clean end (transport review, 2026-12-06)
                cut_short = (
                    f"{reassembler.buffered} bytes of message {reassembler.message_id} dropped"
                )
                logger.warning(
                    "the server %s ended the session in the middle of a message: %s",
                    self._target,
                    cut_short,
                )
                raise TransportClosed(
                    grpc.StatusCode.OK, f"server ended the session mid-message ({cut_short})"
                )
            self._end(TransportClosed(grpc.StatusCode.OK, "server ended the session"))
        except InboxOverflow as exc:
            logger.warning("ending the session with %s: %s", self._target, exc.details)
            call.cancel()
            self._end(exc, purge=True)
        except (MalformedFrame, MessageTooLarge) as exc:
            logger.warning("refused a message from the server: %s", exc)
            call.cancel()
            self._end(TransportClosed(grpc.StatusCode.CANCELLED, f"refused from server: {exc}"))
        except grpc.RpcError as exc:
            self._end(TransportClosed(exc.code(), exc.details()))
        except TransportClosed as exc:
            self._end(exc)
        except Exception as exc:  # a bug here must end the session, not hang receive()
            logger.exception("reader of the session with %s failed", self._target)
            call.cancel()
            self._end(TransportClosed(grpc.StatusCode.INTERNAL, f"client reader failed: {exc}"))
        finally:
            if overdue is not None:
                overdue.cancel()
            self._outbox.put(_END)  # let the request generator (and its thread) finish
            self._ready.set()

    def _watch_message(self, call: Any) -> threading.Timer | None:
        """Start the deadline of a message from the server that has just begun (None
        without one): :meth:`_message_overdue` when it passes, unless cancelled first."""
        if self._message_receive_timeout is None:
            return None
        timer = threading.Timer(self._message_receive_timeout, self._message_overdue, (call,))
        timer.name = "secagg-grpc-client-message-deadline"
        timer.daemon = True
        timer.start()
        return timer

    def _message_overdue(self, call: Any) -> None:
        """End the session: a message from the server was not whole within
        ``message_receive_timeout`` of its first frame (the reader, blocked in gRPC
        until the next frame, cannot see that itself). The messages before it stay
        readable; the partial one is dropped with the reader."""
        reason = (
            f"a message from the server begun {self._message_receive_timeout:g} s ago is not whole"
        )
        logger.warning("ending the session with %s: %s", self._target, reason)
        self._end(TransportClosed(grpc.StatusCode.DEADLINE_EXCEEDED, f"ended locally: {reason}"))
        call.cancel()

    def _room_for(self, incoming: int) -> bool:
        """Whether the inbox may take one more message of which ``incoming`` bytes
        have arrived (the reader's check, before each frame is kept)."""
        with self._lock:
            return (
                self._queued_messages < self._max_queued_messages
                and self._queued_bytes + incoming <= self._max_queued_bytes
            )

    def _overflow(self, incoming: int) -> InboxOverflow:
        with self._lock:
            messages, held = self._queued_messages, self._queued_bytes
        return InboxOverflow(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the server sent more than this client holds unread ({messages} messages, "
            f"{held} bytes held, {incoming} more arriving; at most "
            f"{self._max_queued_messages} messages and {self._max_queued_bytes} bytes)",
        )

    def _end(self, closed: TransportClosed, *, purge: bool = False) -> None:
        """Record the first reason the session ended and wake a blocked receive().

        ``purge`` also drops the messages not read yet (a session ended for what the
        server sent): their memory is freed now, and none is delivered."""
        with self._lock:
            if self._ended is not None:
                return
            self._ended = closed
            if purge:
                while True:
                    try:
                        self._inbox.get_nowait()
                    except queue.Empty:
                        break
                self._queued_messages = self._queued_bytes = 0
        self._inbox.put(closed)
