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
import socket

__all__ = ["ip_name", "not_an_ipv4_address"]


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
