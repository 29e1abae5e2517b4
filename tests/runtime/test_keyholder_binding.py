"""The runtime key holder holds its own policy: the federation's round length is bound
from the config it holds, and a key holder with its own noise needs a lifetime cap.

Each party enforces its own policy (docs/architecture.md): the key holder takes neither the
length of what it decrypts nor how often it decrypts from the server's requests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, Announce, ToParty, decode_spec
from secagg.aggregation.ckks import KeyHolderSession
from secagg.aggregation.keyholder_policy import KeyHolderPolicy, WrongDimension
from secagg.apps.cli import main
from secagg.errors import ConfigurationError, ProtocolError
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import bound_to_federation
from secagg.runtime.launch import (
    key_holder_service,
    make_key_holder_key,
    run_key_holder,
)

NAMES = ["branch-a", "branch-b", "branch-c"]
D = 40


def _config(dimension: int = D) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": NAMES, "dimension": dimension, "rounds": 2},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
        }
    )


def _decryption_request(
    config: FederationConfig, helper: KeyHolderSession, dimension: int, round_number: int
) -> bytes:
    """A server's round of ``dimension`` values under the federation's design point, up to
    its decryption request (the key request is answered by ``helper``)."""
    backend = config.aggregation_backend()
    server = backend.server(backend.plan(len(NAMES), dimension))
    server.bind_federation(config.name)  # as the federation's server names it
    (request,) = server.start()
    assert isinstance(request, ToParty)
    events = server.handle(HELPER, helper.handle(request.payload, round_number=round_number))
    spec = decode_spec(next(e for e in events if isinstance(e, Announce)).spec)
    outgoing: list = []
    for party in range(len(NAMES)):
        upload = backend.client(spec, party).set_input(np.full(dimension, 0.25))[0]
        outgoing = server.handle(party, upload)
    (decrypt,) = outgoing
    assert isinstance(decrypt, ToParty) and decrypt.party == HELPER
    return decrypt.payload


def _state(helper: KeyHolderSession, state: Path) -> tuple[object, ...]:
    return (
        helper.fingerprint,
        helper.decryptions,
        tuple(helper.record.rounds),
        helper.opened,
        state.read_bytes() if state.exists() else None,
    )


def test_the_runtime_key_holder_refuses_a_sum_of_another_length_than_the_federations(
    tmp_path: Path,
) -> None:
    """The decryption request's dimension is the server's word. The runtime key holder
    (``key_holder_service``, what ``secagg keyholder --config`` and the simulator run)
    decrypted a round the server planned at any length; it now binds the federation's
    round length from its own copy of the config and refuses a round of another length
    when the server opens it (the key request names the round's dimension), before any
    branch encrypts: no context published, no decryption counted, no round number used,
    the state file untouched."""
    config = _config()
    key = tmp_path / "compliance.key"
    make_key_holder_key(config, key)
    service = key_holder_service(config, None, {"key": str(key)})  # type: ignore[arg-type]
    helper = service.session
    assert isinstance(helper, KeyHolderSession)
    assert helper.policy.dimension == D
    state = Path(f"{key}.state")
    backend = config.aggregation_backend()
    for other in (D + 1, 2 * D, D - 1):
        server = backend.server(backend.plan(len(NAMES), other))
        server.bind_federation(config.name)
        (request,) = server.start()
        before = _state(helper, state)
        with pytest.raises(WrongDimension, match=f"a round of {other} values refused") as caught:
            helper.handle(request.payload, round_number=3)
        assert isinstance(caught.value, ProtocolError)
        assert _state(helper, state) == before
    # the agreed length is served, under the round number the refusals did not use
    helper.handle(_decryption_request(config, helper, D, round_number=3), round_number=3)
    assert helper.decryptions == 1 and helper.record.rounds == [3]


def test_a_key_holder_dimension_that_disagrees_with_the_federation_is_refused_at_start(
    tmp_path: Path,
) -> None:
    """A ``[key_holder] dimension`` is the operator's own statement of the round length;
    one that disagrees with the federation's file is a mistake caught before dialling,
    in one line naming the key; the same value, or none, is taken."""
    config = _config()
    assert bound_to_federation(config, {}) == {"dimension": D, "federation": config.name}
    assert bound_to_federation(config, {"dimension": D, "min_contributions": 3}) == {
        "dimension": D,
        "min_contributions": 3,
        "federation": config.name,
    }
    with pytest.raises(ConfigurationError, match=r"^\[key_holder\] dimension: 41 disagrees"):
        run_key_holder(
            "127.0.0.1:1", "compliance", str(tmp_path), config=config, settings={"dimension": 41}
        )
    for bad, says in [("40", "must be an integer"), (0, "must be in"), (True, "integer")]:
        with pytest.raises(ConfigurationError, match=rf"^\[key_holder\] dimension: .*{says}"):
            KeyHolderPolicy.from_dict({"dimension": bad})
    with pytest.raises(ConfigurationError, match=r"^\[key_holder\] dimension: must be an int"):
        config.aggregation_backend().helper(bound_to_federation(config, {"dimension": "40"}))


def test_keyholder_with_its_own_noise_and_no_cap_exits_with_one_line(tmp_path: Path) -> None:
    """``secagg keyholder --policy F`` whose [key_holder] table sets noise_stddev but no
    max_decryptions started and decrypted without bound; it now exits 2 with one line
    naming the key, before dialling. With a cap it gets past the policy (to the
    certificates, which this test does not provide)."""
    policy = tmp_path / "keyholder.toml"
    policy.write_text("[key_holder]\nnoise_stddev = 1.0\n")
    args = ["keyholder", "--server", "127.0.0.1:50999", "--name", "kh", "--certs", "none"]
    result = CliRunner().invoke(main, [*args, "--policy", str(policy)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    # the policy file is named (since 2026-12-07: a mistake in a file names the file)
    assert lines[0].startswith(f"secagg keyholder: kh: --policy {policy}: "), lines[0]
    assert "[key_holder] max_decryptions: required" in lines[0]
    policy.write_text("[key_holder]\nnoise_stddev = 1.0\nmax_decryptions = 20\n")
    result = CliRunner().invoke(main, [*args, "--policy", str(policy)])
    assert "max_decryptions" not in result.stderr


def test_the_guides_key_holder_tables_start_a_key_holder(tmp_path: Path) -> None:
    """Every ``[key_holder]`` table the guides show is one a key holder starts with
    (a table with noise_stddev and no cap would now be refused at start), and the
    deployment guide shows one with its own noise, and so a cap."""
    import re
    import tomllib

    docs = Path(__file__).resolve().parents[2] / "docs"
    tables = []
    for page in ("backends.md", "deployment.md"):
        for block in re.findall(r"```toml\n(.*?)```", (docs / page).read_text(), re.S):
            if "[key_holder]" in block:
                tables.append((page, tomllib.loads(block)["key_holder"]))
    assert {page for page, _ in tables} == {"backends.md", "deployment.md"}
    for page, table in tables:
        table = {k: v for k, v in table.items() if k != "key"}  # a key file: not made here
        policy = KeyHolderPolicy.from_dict(table, base_dir=tmp_path)
        assert policy.noise_stddev == 0 or policy.max_decryptions is not None, page
