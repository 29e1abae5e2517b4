"""The development CA's server names: what ``secagg certs init --server-name`` puts in
the server certificate's subject alternative names."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.errors import ConfigurationError


def _sans(directory: Path) -> x509.SubjectAlternativeName:
    certificate = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


@pytest.mark.parametrize(
    ("given", "address"),
    [("[::1]", "::1"), ("[fd00::5]", "fd00::5"), ("[FD00:0:0:0:0:0:0:5]", "fd00::5")],
)
def test_a_bracketed_ipv6_name_becomes_an_ip_san(tmp_path: Path, given: str, address: str) -> None:
    """``secagg client --server-name`` takes ``[fd00::5]``; the CA refused that spelling."""
    devca.init_ca(tmp_path / "ca", server_names=[given])
    sans = _sans(tmp_path / "ca")
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(address)]
    assert sans.get_values_for_type(x509.DNSName) == []


@pytest.mark.parametrize("given", ["fe80::1%eth0", "[fe80::1%eth0]"])
def test_an_ipv6_zone_is_refused_not_dropped(tmp_path: Path, given: str) -> None:
    """A zone names one machine's interface; the certificate would have carried the
    bare address without saying so."""
    with pytest.raises(ConfigurationError, match="zone"):
        devca.init_ca(tmp_path / "ca", server_names=[given])
    assert not (tmp_path / "ca" / "server.pem").exists()


@pytest.mark.parametrize("given", ["[host.example]", "[1.2.3.4]", "[::1", "::1]", "[:::]"])
def test_brackets_around_anything_but_an_ipv6_address_are_refused(
    tmp_path: Path, given: str
) -> None:
    with pytest.raises(ConfigurationError, match="neither an IP address nor a host"):
        devca.init_ca(tmp_path / "ca", server_names=[given])


def test_the_cli_takes_a_bracketed_address_and_refuses_a_zone_in_one_line(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    made = runner.invoke(
        main, ["certs", "init", "--dir", str(tmp_path / "a"), "--server-name", "[::1]"]
    )
    assert made.exit_code == 0, made.output
    assert _sans(tmp_path / "a").get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("::1")
    ]
    refused = runner.invoke(
        main, ["certs", "init", "--dir", str(tmp_path / "b"), "--server-name", "fe80::1%eth0"]
    )
    assert refused.exit_code != 0
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "zone" in lines[0] and "Traceback" not in refused.output


def test_one_name_in_two_spellings_is_one_san(tmp_path: Path) -> None:
    """Review (2026-12-05): ``--server-name ::1 --server-name [0:0:0:0:0:0:0:1]`` (or
    ``FL.bank`` and ``fl.bank.``) put the same SAN in the certificate once per spelling."""
    given = ["::1", "0:0:0:0:0:0:0:1", "[::1]", "FL.bank", "fl.bank.", "fl.bank", "10.0.0.5"]
    devca.init_ca(tmp_path / "ca", server_names=given)
    sans = _sans(tmp_path / "ca")
    assert list(sans) == [
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName("fl.bank"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.5")),
    ]


def test_an_ipv4_mapped_first_name_is_the_cn_in_grpcs_spelling(tmp_path: Path) -> None:
    """The CN of a certificate whose first name is ``::ffff:10.0.0.5`` read
    ``::ffff:a00:5`` (Python 3.11's spelling), not the address as given and as gRPC
    (inet_ntop) spells it."""
    devca.init_ca(tmp_path / "ca", server_names=["::FFFF:10.0.0.5"])
    certificate = x509.load_pem_x509_certificate((tmp_path / "ca" / "server.pem").read_bytes())
    cn = certificate.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    assert [attribute.value for attribute in cn] == ["::ffff:10.0.0.5"]


@pytest.mark.parametrize("given", ["256.1.1.1", "010.0.0.5", "10.0.0", "1.2.3.4.5", "10.0.0.5x."])
def test_a_numeric_name_that_is_no_ipv4_address_is_refused(tmp_path: Path, given: str) -> None:
    """``256.1.1.1`` became a DNS SAN (its labels pass as host labels) that no client can
    match: gRPC checks a dotted-digits name against the IP SANs only."""
    if given.endswith("x."):  # a host whose last label is not all digits stays a host
        devca.init_ca(tmp_path / "ca", server_names=[given])
        assert _sans(tmp_path / "ca").get_values_for_type(x509.DNSName) == ["10.0.0.5x"]
        return
    with pytest.raises(ConfigurationError, match="is not an IPv4 address"):
        devca.init_ca(tmp_path / "ca", server_names=[given])
    assert not (tmp_path / "ca" / "server.pem").exists()


def test_an_ipv4_address_with_a_trailing_dot_is_an_ip_san(tmp_path: Path) -> None:
    """``secagg client --server-name 10.0.0.5.`` checks 10.0.0.5; the CA made a DNS SAN
    ``10.0.0.5`` of it, which gRPC never consults for a dotted-digits name."""
    devca.init_ca(tmp_path / "ca", server_names=["10.0.0.5."])
    sans = _sans(tmp_path / "ca")
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert sans.get_values_for_type(x509.DNSName) == []


def test_certs_init_says_the_names_the_certificate_carries(tmp_path: Path) -> None:
    """The line listed the names as given ('::1, 0:0:0:0:0:0:0:1, FL.bank, [::FFFF:a00:5]'),
    one address twice; it lists what the certificate carries, as gRPC spells it."""
    given = ["::1", "0:0:0:0:0:0:0:1", "FL.bank", "[::FFFF:a00:5]"]
    args = ["certs", "init", "--dir", str(tmp_path / "ca")]
    for name in given:
        args += ["--server-name", name]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("server certificate for")]
    assert line.startswith("server certificate for ::1, fl.bank, ::ffff:10.0.0.5: "), line
