"""``secagg.transport.grpc_transport`` is still the one import path after the split.

The transport was one file of 2 285 lines; its code now lives in modules of the
transport package by what it does (limits, errors, dial diagnosis, server, client).
Tests, the runtime and operators' code import its names from ``grpc_transport`` (and
monkeypatch them there), and operators' log settings address its logger: both must
hold after the split, without a behaviour change.
"""

from __future__ import annotations

import importlib
import logging

import pytest

from secagg.transport import grpc_transport

#: every name the one-file module defined or imported from secagg (its standard-library
#: and grpcio imports aside), read from it before the split
NAMES = (
    "CertificateRefusalInferred",
    "ClosedAfterHandshake",
    "ConfigurationError",
    "Connected",
    "ConnectionEvent",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_HANDSHAKE_SECONDS",
    "DEFAULT_IDLE_CONNECTION_SECONDS",
    "DEFAULT_MAX_INBOX_MESSAGES",
    "DEFAULT_MAX_PENDING_EVENTS",
    "DEFAULT_MAX_QUEUED_MESSAGES",
    "DEFAULT_PARTIAL_IDLE_SECONDS",
    "DEFAULT_RECHECK_SECONDS",
    "DEFAULT_SESSION_BURST",
    "DEFAULT_SESSION_RATE",
    "Disconnected",
    "GRPC_MAX_MILLISECONDS",
    "GrpcClientTransport",
    "GrpcServerTransport",
    "HEADER_BYTES",
    "HandshakeFailed",
    "IDENTITY_METADATA_KEY",
    "IdentityRefused",
    "InboxOverflow",
    "MAX_INCOMING_CONNECTIONS",
    "MAX_STATUS_TEXT",
    "MIN_QUEUED_BYTES",
    "MalformedFrame",
    "MessageTooLarge",
    "NotAccepted",
    "NotConnected",
    "OutboxOverflow",
    "Reassembler",
    "SERVICE_NAME",
    "SESSION_METHOD",
    "SUPERSEDED_DETAIL",
    "ServerNameMismatch",
    "SessionThrottled",
    "Superseded",
    "THROTTLE_DETAIL",
    "TLS_VERSIONS",
    "TransportClosed",
    "TransportError",
    "UnknownHost",
    "_AdmittedContext",
    "_CLIENT_KEEPALIVE",
    "_CLIENT_RECONNECT",
    "_END",
    "_ENDED_WRITER_GRACE_SECONDS",
    "_HALF_CLOSE_END_SECONDS",
    "_HOSTNAME_FAILURE",
    "_MAX_DEFAULT_CONNECTIONS",
    "_MAX_SERVED_NAMES",
    "_MAX_TRACKED_IDENTITIES",
    "_PEER_CERT_KEY",
    "_POLL_SECONDS",
    "_PROBE_METHOD",
    "_READER_JOIN_SECONDS",
    "_REFUSING_CODES",
    "_SERVER_KEEPALIVE",
    "_Session",
    "_SessionRate",
    "_TLS_VERSION_KEY",
    "_UNKNOWN_NAME_ERRORS",
    "_as_bytes",
    "_as_host",
    "_auth_snapshot",
    "_certificate_of",
    "_certificate_refused",
    "_check_sizes",
    "_check_timer_seconds",
    "_checked_name",
    "_closed",
    "_common_name",
    "_dial_failure",
    "_grpc_size_options",
    "_host_port",
    "_identity_key",
    "_install_closed_channel_filter",
    "_ip_spelling",
    "_is_closed_channel_poll",
    "_is_ip_address",
    "_name_mismatch",
    "_queue_budgets",
    "_quotable",
    "_same_name",
    "_served_names",
    "_status_line",
    "_still_listening",
    "_unknown_host",
    "_utcnow",
    "_waited",
    "default_max_connections",
    "encode_frames",
    "grpc_milliseconds",
    "logger",
    "logging",
    "printable_line",
    "waitable_seconds",
)

MODULES = ("grpc_limits", "grpc_errors", "grpc_dial", "grpc_server", "grpc_client")


@pytest.mark.parametrize("name", NAMES)
def test_every_name_of_the_one_file_module_is_still_importable(name: str) -> None:
    assert hasattr(grpc_transport, name), name


@pytest.mark.parametrize("module", MODULES)
def test_each_module_logs_on_the_transport_s_logger_and_says_what_lives_there(
    module: str,
) -> None:
    loaded = importlib.import_module(f"secagg.transport.{module}")
    assert loaded.__doc__ and "Why a module of its own" in loaded.__doc__
    logger = getattr(loaded, "logger", None)
    if logger is not None:
        assert logger is logging.getLogger(grpc_transport.__name__)


@pytest.mark.parametrize("module", MODULES)
def test_the_names_are_the_modules_own_objects(module: str) -> None:
    """One class, not a copy: ``except grpc_transport.HandshakeFailed`` catches what the
    client raises, and a monkeypatch of a class attribute reaches the code using it."""
    loaded = importlib.import_module(f"secagg.transport.{module}")
    for name, value in vars(loaded).items():
        if isinstance(value, type) and value.__module__ == loaded.__name__:
            assert getattr(grpc_transport, name) is value, name


def test_the_server_and_the_client_do_not_import_each_other() -> None:
    """What the split is for: each side is read apart from the other."""
    for module, other in (("grpc_server", "grpc_client"), ("grpc_client", "grpc_server")):
        source = importlib.import_module(f"secagg.transport.{module}").__file__
        assert source is not None
        with open(source, encoding="utf-8") as handle:
            assert f"secagg.transport.{other}" not in handle.read(), module
