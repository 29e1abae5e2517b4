"""A federation TOML with a mistake gets one message naming the section and the key.

Newcomer review, section 6 (type errors naming no key) and section 5 (a bind whose port
wrapped to 34463 or silently became 443)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig, split_host_port


def _config(**sections: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "federation": {"name": "fraud", "clients": ["b1", "b2", "b3"], "dimension": 10}
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return data


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("dp", {"noise_multiplier": "1.1"}, "[dp] noise_multiplier must be a number, not '1.1'"),
        ("federation", {"dimension": "1000"}, "[federation] dimension must be an integer"),
        ("federation", {"rounds": 2.5}, "[federation] rounds must be an integer, not 2.5"),
        ("federation", {"clients": "b1,b2"}, "[federation] clients must be a list of strings"),
        ("sampling", {"rate": "0.5"}, "[sampling] rate must be a number, not '0.5'"),
        ("backend", {"active": 1}, "[backend] active must be true or false, not 1"),
        ("backend", {"bits": "32"}, "[backend] bits must be an integer"),
        ("deadlines", {"phase_seconds": "30"}, "[deadlines] phase_seconds must be a number"),
        ("server", {"bind": 50051}, "[server] bind must be a string"),
        ("dp", {"clip": True}, "[dp] clip must be a number, not True"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_section_and_key(
    section: str, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        FederationConfig.from_dict(_config(**{section: values}))
    assert message in str(info.value)
    assert "not supported between" not in str(info.value)


def test_a_number_where_a_float_is_expected_may_be_written_as_an_integer() -> None:
    config = FederationConfig.from_dict(_config(dp={"noise_multiplier": 2, "clip": 1}))
    assert config.dp is not None and config.dp.noise_multiplier == 2


def test_the_type_error_comes_from_the_file_as_well(tmp_path: Path) -> None:
    path = tmp_path / "federation.toml"
    path.write_text(
        '[federation]\nname = "f"\nclients = ["a", "b", "c"]\ndimension = 10\n'
        '[dp]\nnoise_multiplier = "1.1"\n'
    )
    with pytest.raises(ConfigurationError, match=r"\[dp\] noise_multiplier must be a number"):
        FederationConfig.load(path)


@pytest.mark.parametrize(
    ("bind", "message"),
    [
        ("127.0.0.1:99999", "port 99999 is outside 1-65535"),  # was: listened on 34463
        ("127.0.0.1", "has no port"),  # was: listened on 443
        ("127.0.0.1:", "has no port"),
        ("127.0.0.1:http", "'http' is not a number"),
        ("127.0.0.1:-5", "'-5' is not a number"),
        (":50051", "has no host"),
        ("::1:50051", "put an IPv6 host in brackets"),
        ("[::1", "unclosed '['"),
    ],
)
def test_a_bind_that_is_not_host_and_port_in_range_is_refused(bind: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        FederationConfig.from_dict(_config(server={"bind": bind}))
    assert "[server] bind" in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("bind", "host", "port"),
    [
        ("127.0.0.1:50051", "127.0.0.1", 50051),
        ("0.0.0.0:1", "0.0.0.0", 1),
        ("fl.bank.internal:65535", "fl.bank.internal", 65535),
        ("[::1]:50051", "::1", 50051),
        ("127.0.0.1:0", "127.0.0.1", 0),  # the OS picks a free port (tests, benchmarks)
    ],
)
def test_valid_binds_are_kept(bind: str, host: str, port: int) -> None:
    assert FederationConfig.from_dict(_config(server={"bind": bind})).server.bind == bind
    assert split_host_port(bind, "bind", allow_any_port=True) == (host, port)


def test_the_default_bind_is_the_documented_port() -> None:
    assert FederationConfig.from_dict(_config()).server.bind.endswith(":50051")


def test_an_address_to_dial_needs_a_real_port() -> None:
    with pytest.raises(ConfigurationError, match=r"--server '127\.0\.0\.1:0': port 0 is outside"):
        split_host_port("127.0.0.1:0", "--server")


def test_the_deployment_guides_example_loads_and_does_not_abort_half_its_rounds() -> None:
    """Newcomer review 9: the guide's 3 branches at Poisson rate 0.5 aborted half their
    rounds (fewer than 2 sampled), and its z = 1.1 meant epsilon 22 over 50 rounds."""
    import tomllib

    guide = (Path(__file__).resolve().parents[2] / "docs" / "deployment.md").read_text()
    block = guide.split("```toml\n[federation]")[1].split("```")[0]
    config = FederationConfig.from_dict(tomllib.loads("[federation]" + block))
    assert config.server.bind.endswith(":50051")
    assert config.sample_rate == 1.0 and len(config.clients) == 3
    assert config.dp is not None and config.dp.epsilon_budget is not None


def test_the_session_rate_per_identity_is_a_server_setting() -> None:
    """One branch churning sessions is throttled; the bucket's size and rate are the
    server's (documented defaults 10 and 1 a second; 0 turns the limit off)."""
    default = FederationConfig.from_dict(_config()).server
    assert (default.session_burst, default.session_rate) == (10, 1.0)
    config = FederationConfig.from_dict(_config(server={"session_burst": 0, "session_rate": 5}))
    assert (config.server.session_burst, config.server.session_rate) == (0, 5)
    for bad in ({"session_burst": -1}, {"session_rate": 0}, {"session_rate": float("inf")}):
        with pytest.raises(ConfigurationError, match=r"\[server\] session_"):
            FederationConfig.from_dict(_config(server=bad))


def test_the_quorum_wait_is_a_server_setting() -> None:
    """The server's wait for a quorum before each round (reliability D2) is configurable."""
    config = FederationConfig.from_dict(_config(server={"quorum_wait_seconds": 30}))
    assert config.server.quorum_wait_seconds == 30
    assert FederationConfig.from_dict(_config()).server.quorum_wait_seconds == 600.0
    for bad in (0, -1, float("inf")):
        with pytest.raises(ConfigurationError, match=r"\[server\] quorum_wait_seconds"):
            FederationConfig.from_dict(_config(server={"quorum_wait_seconds": bad}))


@pytest.mark.parametrize(
    ("deadlines", "named"),
    [
        # the reliability review's D3: a documented 1800 s training phase in a 600 s round
        ({"training_seconds": 1800.0, "round_seconds": 600.0}, "deadlines.training_seconds (1800)"),
        ({"training_seconds": 900.0}, "deadlines.training_seconds (900)"),  # round: 600 default
        ({"phase_seconds": 90.0, "round_seconds": 60.0}, "deadlines.phase_seconds (90)"),
        ({"phase_seconds": 700.0}, "deadlines.phase_seconds (700)"),
    ],
)
def test_a_round_shorter_than_its_training_phase_is_refused(
    deadlines: dict[str, float], named: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        FederationConfig.from_dict(_config(deadlines=deadlines))
    assert "deadlines.round_seconds" in str(info.value) and named in str(info.value)


def test_a_round_as_long_as_its_training_phase_is_accepted() -> None:
    config = FederationConfig.from_dict(
        _config(deadlines={"training_seconds": 1800.0, "round_seconds": 3600.0})
    )
    assert config.deadlines.first_phase_seconds == 1800.0


@pytest.mark.parametrize("missing", ["name", "clients", "dimension"])
def test_a_missing_required_key_is_named_not_a_python_signature(missing: str) -> None:
    """CLI audit (2026-12-03): "[federation]: FederationConfig.__init__() missing 1
    required positional argument: 'clients'"."""
    data = _config()
    del data["federation"][missing]
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(data)
    assert str(refused.value) == f"[federation] lacks {missing}"


# --- settings no round can run with (CLI audit, 2026-12-04) ----------------------------------


@pytest.mark.parametrize(
    ("backend", "named"),
    [
        # the server bound, aborted every round and wrote 5 ledger rows saying so
        (
            {"dropout_fraction": 0.9, "corrupt_fraction": 0.5},
            "dropout_fraction = 0.9, corrupt_fraction = 0.5: no round of the 3 clients",
        ),
        (
            {"name": "ckks", "key_holder": "kh", "precision": 1e-30},
            "precision = 1e-30: no round of the 3 clients can run",
        ),
    ],
)
def test_settings_no_round_can_run_with_are_refused_at_load(
    backend: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(_config(backend=backend))
    text = str(refused.value)
    assert text.startswith("[backend] name = ") and named in text, text
    assert "\n" not in text


@pytest.mark.parametrize("precision", [-1.0, 0.0, float("nan"), float("inf")])
def test_a_ckks_precision_that_is_not_a_positive_number_is_refused(precision: float) -> None:
    with pytest.raises(ConfigurationError, match=r"backend\.precision must be a positive number"):
        FederationConfig.from_dict(
            _config(backend={"name": "ckks", "key_holder": "kh", "precision": precision})
        )


def test_the_round_plan_check_accepts_what_the_server_runs() -> None:
    """Every backend's defaults, the active variant (planned with stand-in identities)
    and distributed DP's noise share plan a round of the federation's clients."""
    for backend in (
        {"name": "plain"},
        {"name": "secagg"},
        {"name": "secagg+", "active": True},
        {"name": "ckks", "key_holder": "kh"},
        {"name": "secagg+", "dropout_fraction": 0.4, "corrupt_fraction": 0.5},
    ):
        FederationConfig.from_dict(_config(backend=backend))
    dp = {"mechanism": "distributed", "clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-3}
    FederationConfig.from_dict(_config(dp=dp))


@pytest.mark.parametrize(
    ("section", "values", "named"),
    [
        # round 1 checkpointed a model of infinities; every branch refused it; 5 aborts
        ("federation", {"server_learning_rate": float("inf")}, "federation.server_learning_rate"),
        ("federation", {"server_learning_rate": float("nan")}, "federation.server_learning_rate"),
        ("federation", {"server_learning_rate": 1e300}, "federation.server_learning_rate"),
        ("federation", {"server_momentum": float("nan")}, "federation.server_momentum"),
        # quorum_wait_seconds had to be finite, the round's own deadlines did not
        (
            "deadlines",
            {"phase_seconds": float("inf"), "round_seconds": float("inf")},
            "deadlines.phase_seconds",
        ),
        ("deadlines", {"round_seconds": float("inf")}, "deadlines.round_seconds"),
        ("deadlines", {"training_seconds": float("inf")}, "deadlines.training_seconds"),
        ("deadlines", {"round_seconds": float("nan")}, "deadlines.round_seconds"),
    ],
)
def test_every_float_of_the_federation_must_be_finite(
    section: str, values: dict[str, float], named: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(_config(**{section: values}))
    assert str(refused.value).startswith(named), str(refused.value)


def test_a_count_beside_poisson_sampling_is_refused_not_ignored() -> None:
    """CLI audit (2026-12-04): ``[sampling] count = 2`` with the default kind (poisson)
    was silently ignored: every client joined every round."""
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(_config(sampling={"count": 2}))
    assert str(refused.value).startswith("sampling.count is for sampling.kind = 'fixed'")
    config = FederationConfig.from_dict(_config(sampling={"kind": "fixed", "count": 2}))
    assert config.sampling.count == 2


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("branches", "key branches at the top level, before any [section] header: put it in"),
        (
            "rounds",
            "key rounds at the top level, before any [section] header: put it in [federation]",
        ),
        ("clip", "put it in [dp]"),
    ],
)
def test_a_key_above_every_section_is_named_as_a_key_not_a_section(
    tmp_path: Path, key: str, message: str
) -> None:
    """It was reported as "unknown sections: ['branches']"."""
    path = tmp_path / "federation.toml"
    path.write_text(
        f'{key} = 2\n[federation]\nname = "f"\nclients = ["a", "b", "c"]\ndimension = 10\n'
    )
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.load(path)
    assert message in str(refused.value)
    assert "unknown sections" not in str(refused.value)


@pytest.mark.parametrize("data", [None, "federation", [], 5])
def test_from_dict_of_something_other_than_a_table_says_so(data: object) -> None:
    # before: None raised TypeError, a string a ValueError from dict(), and [] said
    # "[federation] lacks name, clients, dimension"
    with pytest.raises(ConfigurationError, match="a table"):
        FederationConfig.from_dict(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [None, 5, 2.5])
def test_load_needs_a_path(path: object) -> None:
    # before: None raised TypeError, and 5 was opened as file descriptor 5 (whatever the
    # process had open there, which open() then closed) and read as a TOML file
    with pytest.raises(ConfigurationError, match="path"):
        FederationConfig.load(path)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (
            "dp",
            {"epsilon_budgt": 3.0},
            "unknown keys in [dp]: ['epsilon_budgt'] (did you mean 'epsilon_budget'?)",
        ),
        ("federation", {"round": 3}, "[federation]: ['round'] (did you mean 'rounds'?)"),
        ("sampling", {"rat": 0.5}, "[sampling]: ['rat'] (did you mean 'rate'?)"),
        ("backend", {"nmae": "plain"}, "[backend]: ['nmae'] (did you mean 'name'?)"),
        (
            "deadlines",
            {"phase_second": 30.0},
            "[deadlines]: ['phase_second'] (did you mean 'phase_seconds'?)",
        ),
        ("server", {"bnd": "0.0.0.0:50051"}, "[server]: ['bnd'] (did you mean 'bind'?)"),
        # a key of another section is named with its own
        ("backend", {"clip": 1.0}, "[backend]: ['clip'] (it belongs in [dp])"),
        (
            "server",
            {"epsilon_budgt": 3.0},
            "[server]: ['epsilon_budgt'] (did you mean [dp] epsilon_budget?)",
        ),
        (
            "dp",
            {"epsilon_budgt": 3.0, "rounds": 2, "colour": "red"},
            "['colour', 'epsilon_budgt', 'rounds'] ('epsilon_budgt': did you mean "
            "'epsilon_budget'?; 'rounds': it belongs in [federation])",
        ),
    ],
)
def test_a_misspelt_key_gets_the_likely_spelling(
    tmp_path: Path, section: str, values: dict[str, Any], message: str
) -> None:
    """Newcomer audit (2026-12-05): ``unknown keys in [dp]: ['epsilon_budgt']`` named no
    spelling, unlike the simulate config; every section now suggests one (difflib), from
    a file as from a table."""
    data = _config(**{section: values})
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(data)
    assert message in str(refused.value)
    path = tmp_path / "federation.toml"
    path.write_text(  # JSON's numbers, strings and lists of strings are TOML's too
        "".join(
            f"[{name}]\n"
            + "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())
            for name, table in data.items()
        )
    )
    with pytest.raises(ConfigurationError) as loaded:
        FederationConfig.load(path)
    assert message in str(loaded.value)


def test_a_key_nothing_resembles_gets_no_guess() -> None:
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(_config(dp={"colour": "red"}))
    assert str(refused.value) == "unknown keys in [dp]: ['colour']"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("dpp", "unknown sections: ['dpp'] (did you mean [dp]?)"),
        ("deadline", "unknown sections: ['deadline'] (did you mean [deadlines]?)"),
        ("weather", "unknown sections: ['weather']"),
    ],
)
def test_a_misspelt_section_gets_the_likely_spelling(section: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(_config(**{section: {"clip": 1.0}}))
    assert str(refused.value) == message


# --- settings the chosen backend does not take (config review, 2026-12-06) -------------

CKKS = {"name": "ckks", "key_holder": "kh"}


@pytest.mark.parametrize(
    ("backend", "key"),
    [
        ({"name": "secagg+", "precision": 1e-9}, "precision"),
        ({"name": "secagg", "precision": 1e-3}, "precision"),
        ({"name": "plain", "precision": 1e-3}, "precision"),
        (CKKS | {"bits": 64}, "bits"),
        ({"name": "plain", "bits": 64}, "bits"),
    ],
)
def test_a_setting_the_backend_does_not_take_is_refused_naming_both_keys(
    backend: dict[str, Any], key: str
) -> None:
    """``precision = 1e-9`` beside secagg+ (whose error is its ring's) or ``bits = 64``
    beside ckks loaded and ran as if absent: the backend never saw them."""
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(_config(backend=backend))
    text = str(refused.value)
    assert f"backend.{key} = " in text and f"backend.name = {backend['name']!r}" in text, text
    assert "\n" not in text


@pytest.mark.parametrize(
    "backend",
    [
        CKKS | {"bits": 32},  # the default: no behaviour to lose
        CKKS | {"precision": 1e-3},
        {"name": "secagg+", "bits": 64},
        {"name": "secagg", "bits": 32},
        {"name": "plain"},
    ],
)
def test_a_setting_the_backend_takes_or_the_default_still_loads(backend: dict[str, Any]) -> None:
    config = FederationConfig.from_dict(_config(backend=backend))
    assert config.backend.name == backend["name"]
