"""The one spelling of an IP address as the name checked on a server's certificate.

gRPC checks an IP name against the certificate's IP SANs as text, each SAN spelt by
the C library's ``inet_ntop``, so a name must be handed to it in that spelling. It is
not always Python's: before Python 3.13 :mod:`ipaddress` spells the IPv4-mapped
``::ffff:10.0.0.5`` as ``::ffff:a00:5`` and the IPv4-compatible ``::10.0.0.6`` as
``::a00:6``, which gRPC refuses against a certificate for that very address (review,
2026-12-05). Kept free of gRPC so the CLI's option check can use it.
"""

from __future__ import annotations

import ipaddress
import re
import socket

__all__ = ["BadServerName", "certificate_name", "ip_name", "not_an_ipv4_address"]

#: one label of a host name (RFC 1123): letters, digits, inner hyphens, 1 to 63 long
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def ip_name(name: str) -> str | None:
    """``name``'s spelling as gRPC compares it with a certificate's IP SANs (IPv6 as
    ``inet_ntop`` spells it, without brackets or a ``%zone``); None for a host name.

    ``[0:0:0:0:0:0:0:1]`` is ``::1``, ``::FFFF:a00:5`` is ``::ffff:10.0.0.5``. A zone
    names an interface of this machine, never a certificate's: it is dropped here (the
    CLI refuses one before)."""
    literal = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        address = ipaddress.ip_address(literal.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return socket.inet_ntop(socket.AF_INET6, address.packed)


def not_an_ipv4_address(name: str) -> bool:
    """Whether ``name`` reads as an IPv4 address but is none (``256.1.1.1``,
    ``010.0.0.5``, ``10.0.0``): its last label is all digits, which no host name's is
    (a top-level label is never all-numeric: RFC 1123 2.1, RFC 3696 2).

    Why: such a name passed as a host name (letters, digits and hyphens), yet no
    certificate can carry it: gRPC takes a dotted-digits name for an IP address and
    compares it with the IP SANs as text, and a DNS SAN for it is never consulted
    (review, 2026-12-05)."""
    last = name.removesuffix(".").rpartition(".")[2]
    if not last.isascii() or not last.isdigit():
        return False
    try:
        ipaddress.IPv4Address(name.removesuffix("."))
    except ValueError:
        return True
    return False


class BadServerName(ValueError):
    """Why a value cannot be a name a server's certificate carries. ``kind`` is
    ``"zone"`` (an IPv6 address with ``%zone``, named in ``zone``), ``"ipv4"`` (dotted
    digits that are no IPv4 address) or ``"host"`` (no host name either); each caller
    words its own one-line refusal."""

    def __init__(self, kind: str, zone: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.zone = zone


def certificate_name(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | str:
    """``value`` as a name a server's certificate carries: an IP address (IPv6 with or
    without brackets; ``10.0.0.5.`` is ``10.0.0.5``), or a host name without its final
    dot. Raises :class:`BadServerName`.

    Why one rule: ``secagg certs init --server-name`` (the names the certificate
    carries) and ``secagg client/keyholder --server-name`` (the name checked on it)
    each parsed the value their own way, and what one accepted the other refused."""
    bracketed = value.startswith("[") and value.endswith("]") and ":" in value
    address = _ip_literal(value[1:-1] if bracketed else value)
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise BadServerName("zone", address.scope_id)
    if address is not None:
        return address
    if not_an_ipv4_address(value):
        raise BadServerName("ipv4")
    name = value.removesuffix(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(x) for x in name.split(".")):
        raise BadServerName("host")
    return name


def _ip_literal(literal: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``literal`` as an IP address, None if it is none. ``10.0.0.5.`` is ``10.0.0.5``:
    a DNS SAN for it is one gRPC never consults for a dotted-digits name."""
    try:
        return ipaddress.ip_address(literal)
    except ValueError:
        pass
    if not literal.endswith("."):
        return None
    try:
        return ipaddress.IPv4Address(literal.removesuffix("."))
    except ValueError:
        return None
