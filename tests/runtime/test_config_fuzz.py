"""Random mistakes in a federation TOML: one line naming the key, or a value in range.

Each case starts from a valid federation (the bank-fraud example, and two that set every
section), makes one to three edits (a wrong value for any key of any section, a key
dropped, misspelt or moved to the wrong section, a value where a section was, a section
named as a key of ``[federation]``, an unknown section, a key above every header, a file
that is not TOML), writes the file and loads it through :meth:`FederationConfig.load`,
as ``secagg server --config`` does. The oracle: the file loads, and then every value is
in its documented range (a silently accepted nan or a negative deadline is a bug), or it
is refused by a :class:`ConfigurationError` of one line that names an edited key.
"""

from __future__ import annotations

import copy
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from secagg.aggregation import BACKENDS
from secagg.dp.adaptive import MAX_CLIP_LEARNING_RATE
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.errors import ConfigurationError
from secagg.runtime.config import (
    MAX_DIMENSION,
    MAX_ROUNDS,
    MAX_SEED,
    MAX_SERVER_ADAM_TAU,
    MAX_SERVER_LEARNING_RATE,
    MIN_SERVER_ADAM_TAU,
    MIN_SESSION_RATE,
    NAME_PATTERN,
    SERVER_OPTIMIZERS,
    FederationConfig,
    _section_keys,
    min_connections,
    read_toml,
    split_host_port,
)
from secagg.transport.base import MAX_WAIT_SECONDS
from secagg.transport.framing import MAX_INCOMING_CONNECTIONS, MAX_MESSAGE_BYTES
from tests._config_fuzz import (
    Edit,
    Place,
    edit_strategy,
    edited_text,
    one_line,
    refusal_names_a_place,
    toml_text,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bank_fraud" / "federation.toml"

#: every key of every section, from the dataclasses: a new key is fuzzed as it lands
SECTION_KEYS = {name: sorted(keys) for name, keys in _section_keys().items()}
SECTIONS = sorted(SECTION_KEYS)

#: a client-level federation that sets a key of every section
EVERY_SECTION: dict[str, Any] = {
    "federation": {
        "name": "fraud-demo",
        "rounds": 3,
        "clients": ["branch-01", "branch-02", "branch-03", "branch-04"],
        "dimension": 100,
        "server_learning_rate": 1.0,
        "server_momentum": 0.5,
        "seed": 7,
    },
    "sampling": {"kind": "poisson", "rate": 1.0},
    "backend": {"name": "secagg+", "value_bound": 1.0, "bits": 32},
    "dp": {
        "unit": "client",
        "mechanism": "central",
        "clip": 1.0,
        "noise_multiplier": 1.0,
        "delta": 1e-5,
        "adaptive_clip": True,
        "target_quantile": 0.5,
        "count_noise_stddev": 2.0,
        "epsilon_budget": 50.0,
    },
    "deadlines": {"phase_seconds": 30.0, "training_seconds": 60.0, "round_seconds": 600.0},
    "server": {
        "state": "server.sqlite",
        "bind": "127.0.0.1:50051",
        "certificates": "certs",
        "quorum_wait_seconds": 600,
        "handshake_timeout": 10.0,
        "idle_connection_timeout": 60.0,
        "session_burst": 10,
        "session_rate": 1.0,
        "max_connections": 64,
        "unmask_workers": 2,
    },
}

#: fixed cohorts, the plain masking backend and distributed noise
FIXED_DISTRIBUTED: dict[str, Any] = {
    "federation": {"name": "fixed", "clients": ["a", "b", "c", "d", "e"], "dimension": 10},
    "sampling": {"kind": "fixed", "count": 4},
    "backend": {"name": "secagg", "value_bound": 2.0, "dropout_fraction": 0.2},
    "dp": {"unit": "client", "mechanism": "distributed", "clip": 1.0, "delta": 1e-3},
}

#: CKKS with its key holder, record-level DP noised once in the secure sum, threads unmasking
#: on Ray, the active (malicious-server) variant
CKKS_RECORD_RAY: dict[str, dict[str, Any]] = {
    "ckks": {
        "federation": {"name": "he", "clients": ["a", "b", "c"], "dimension": 8},
        "backend": {"name": "ckks", "key_holder": "compliance", "value_bound": 2.0},
        "dp": {"unit": "client", "mechanism": "central", "delta": 1e-4},
    },
    "record": {
        "federation": {"name": "rec", "clients": ["a", "b", "c"], "dimension": 8, "rounds": 4},
        "backend": {"name": "secagg+", "value_bound": 4.0, "active": True},
        "dp": {
            "unit": "record",
            "mechanism": "distributed",
            "clip": 2.0,
            "record_clip": 0.5,
            "record_unit": "transaction",
        },
        "server": {"unmask_on": "ray", "ray_address": "auto", "unmask_workers": 4},
    },
}

BASES = {
    "example": read_toml(EXAMPLE),
    "every": EVERY_SECTION,
    "fixed": FIXED_DISTRIBUTED,
    **CKKS_RECORD_RAY,
}


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _fraction(value: Any) -> bool:
    return isinstance(value, int | float) and 0 <= value < 1


def _count(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _wait(value: Any) -> bool:
    """A positive number of seconds, at most a week (every duration key's bound)."""
    return _positive(value) and value <= MAX_WAIT_SECONDS


def _named(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def ranges_violated(config: FederationConfig) -> list[str]:
    """The documented ranges (docs/deployment.md, the dataclasses' messages) a loaded
    config breaks: each one a bug, since a file outside them must be refused."""
    c, s, b, d, srv = config, config.sampling, config.backend, config.deadlines, config.server
    checks: dict[str, bool] = {
        "federation.name": isinstance(c.name, str) and bool(NAME_PATTERN.fullmatch(c.name)),
        "federation.clients": len(c.clients) >= 2
        and all(isinstance(n, str) and NAME_PATTERN.fullmatch(n) for n in c.clients),
        "federation.dimension": _count(c.dimension, 1) and c.dimension <= MAX_DIMENSION,
        "federation.rounds": _count(c.rounds, 1) and c.rounds <= MAX_ROUNDS,
        "federation.server_learning_rate": _positive(c.server_learning_rate)
        and c.server_learning_rate <= MAX_SERVER_LEARNING_RATE,
        "federation.server_momentum": _fraction(c.server_momentum)
        and (c.server_optimizer != "adam" or c.server_momentum == 0),
        "federation.server_optimizer": c.server_optimizer in SERVER_OPTIMIZERS,
        "federation.server_adam_tau": _positive(c.server_adam_tau)
        and MIN_SERVER_ADAM_TAU <= c.server_adam_tau <= MAX_SERVER_ADAM_TAU,
        # simulate's range: 0 .. 2**32 - 1 (it is hashed in decimal here, never stored)
        "federation.seed": c.seed is None
        or (isinstance(c.seed, int) and c.seed is not True and 0 <= c.seed <= MAX_SEED),
        "federation.replay_noise": isinstance(c.replay_noise, bool),
        "sampling": type(s).__name__ == "SamplingConfig",
        "backend": type(b).__name__ == "BackendConfig",
        "deadlines": type(d).__name__ == "DeadlineConfig",
        "server": type(srv).__name__ == "ServerSettings",
    }
    if not all(checks.values()):
        return [name for name, ok in checks.items() if not ok]
    checks |= {
        "sampling.kind": s.kind in ("poisson", "fixed"),
        "sampling.rate": _positive(s.rate) and s.rate <= 1,
        "sampling.count": s.count is None
        if s.kind == "poisson"
        else _count(s.count, 2) and s.count <= len(c.clients),
        "backend.name": b.name in BACKENDS,
        "backend.value_bound": _positive(b.value_bound),
        "backend.bits": b.bits in (32, 64),
        "backend.dropout_fraction": _fraction(b.dropout_fraction),
        "backend.corrupt_fraction": _fraction(b.corrupt_fraction),
        "backend.precision": b.precision is None or _positive(b.precision),
        "backend.active": isinstance(b.active, bool),
        "deadlines.phase_seconds": _wait(d.phase_seconds),
        "deadlines.round_seconds": _wait(d.round_seconds),
        "deadlines.training_seconds": d.training_seconds is None or _wait(d.training_seconds),
        "server.state": _named(srv.state),
        "server.certificates": _named(srv.certificates),
        "server.bind": _bind_ok(srv.bind),
        "server.max_message_bytes": _count(srv.max_message_bytes, 1024)
        and srv.max_message_bytes <= MAX_MESSAGE_BYTES,
        "server.exclude_after_accusers": _count(srv.exclude_after_accusers, 2),
        "server.bench_after_missed_rounds": _count(srv.bench_after_missed_rounds, 0),
        "server.quorum_wait_seconds": _wait(srv.quorum_wait_seconds),
        "server.unmask_on": srv.unmask_on in ("threads", "ray"),
        "server.unmask_workers": srv.unmask_workers is None or _count(srv.unmask_workers, 1),
        "server.ray_address": srv.ray_address is None or _named(srv.ray_address),
        "server.session_burst": _count(srv.session_burst, 0),
        "server.session_rate": _positive(srv.session_rate) and srv.session_rate >= MIN_SESSION_RATE,
        "server.handshake_timeout": _positive(srv.handshake_timeout)
        and srv.handshake_timeout <= 86400,
        "server.idle_connection_timeout": _positive(srv.idle_connection_timeout)
        and srv.idle_connection_timeout <= 86400,
        "server.max_connections": srv.max_connections is None
        or (
            _count(srv.max_connections, min_connections(len(c.parties)))
            and srv.max_connections <= MAX_INCOMING_CONNECTIONS
        ),
    }
    if c.dp is not None:
        p = c.dp
        checks |= {
            "dp.unit": p.unit in ("client", "record"),
            "dp.clip": _positive(p.clip),
            "dp.noise_multiplier": isinstance(p.noise_multiplier, int | float)
            and math.isfinite(p.noise_multiplier)
            and 0 <= p.noise_multiplier <= MAX_NOISE_MULTIPLIER,
            "dp.delta": isinstance(p.delta, int | float) and 0 < p.delta < 1,
            "dp.accountant": p.accountant in ("pld", "rdp"),
            "dp.adaptive_clip": isinstance(p.adaptive_clip, bool),
            "dp.target_quantile": isinstance(p.target_quantile, int | float)
            and 0 < p.target_quantile < 1,
            "dp.clip_learning_rate": _positive(p.clip_learning_rate)
            and p.clip_learning_rate <= MAX_CLIP_LEARNING_RATE,
            "dp.count_noise_stddev": p.count_noise_stddev is None
            or _positive(p.count_noise_stddev),
            # the adaptive clip's floor and ceiling: only beside adaptive_clip, around dp.clip
            "dp.min_clip": p.min_clip is None
            or (p.adaptive_clip and _positive(p.min_clip) and p.min_clip <= p.clip),
            "dp.max_clip": p.max_clip is None
            or (
                p.adaptive_clip
                and _positive(p.max_clip)
                and p.clip <= p.max_clip <= c.backend.value_bound
            ),
            "dp.epsilon_budget": p.epsilon_budget is None or _positive(p.epsilon_budget),
            "dp.record_clip": p.record_clip is None or _positive(p.record_clip),
            "dp.record_unit": p.record_unit in ("customer", "transaction"),
        }
    return [name for name, ok in checks.items() if not ok]


def _bind_ok(bind: Any) -> bool:
    try:
        split_host_port(bind, "bind", allow_any_port=True)
    except ConfigurationError:
        return False
    return True


# --- the property -------------------------------------------------------------------

EDITS = edit_strategy(SECTION_KEYS, shadow_into="federation")


def check(path: Path, edits: list[Edit], places: list[Place], not_toml: bool) -> None:
    """The oracle, for the file at ``path`` after ``edits``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = FederationConfig.load(path)
    except ConfigurationError as exc:
        message = str(exc)
        assert one_line(message), f"{edits}: a message of several lines: {message!r}"
        if not_toml:  # the file and the line
            assert str(path) in message and "line" in message, f"{edits}: {message!r}"
        else:
            assert refusal_names_a_place(message, places), (
                f"{edits}: the message names no edited key: {message!r}"
            )
        return
    assert not not_toml, f"{edits}: a file that is not TOML loaded"
    # it loaded: every value in its range, and the server's own check before a start
    # (a budget no round fits) raises nothing but a configuration error of one line
    broken = ranges_violated(config)
    assert not broken, f"{edits}: loaded with {broken} out of range"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            config.refuse_budget_below_one_round()
            config.plan_privacy()  # what the server's constructor runs
        except ConfigurationError as exc:
            assert one_line(str(exc)), str(exc)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(base=st.sampled_from(sorted(BASES)), edits=st.lists(EDITS, min_size=1, max_size=3))
# each of these failed before its fix (config fuzz, 2026-12-05):
# a section as a key of [federation]: AttributeError 'int' object has no attribute 'kind'
@example(base="every", edits=[("shadow", "sampling", 2**70)])
@example(base="every", edits=[("shadow", "backend", "ckks")])
# [federation] dp.clip = 1: AttributeError 'dict' object has no attribute 'round_options'
@example(base="example", edits=[("shadow", "dp", {"clip": 1})])
# a fixed cohort's rate was never checked: 2**70 and nan loaded
@example(base="fixed", edits=[("value", ("sampling", "rate"), 2**70)])
@example(base="fixed", edits=[("value", ("sampling", "rate"), math.nan)])
# the mechanism's own words named no key ("32 bits leave a scale of 4.68e-13 ...")
@example(base="fixed", edits=[("value", ("dp", "noise_multiplier"), 2**70)])
# "adaptive clipping: noise_multiplier ... must be below 2 * count_stddev", no [dp]
@example(base="every", edits=[("value", ("dp", "noise_multiplier"), 2**70)])
# "deadlines.round_seconds too short", for a phase_seconds of 2**70
@example(base="every", edits=[("value", ("deadlines", "phase_seconds"), 2**70)])
# "dp.mechanism: with unit = 'client' choose ...", for a dropped dp.unit
@example(base="example", edits=[("drop", ("dp", "unit"))])
# the adaptive clip's keys were unchecked without adaptive_clip
@example(base="example", edits=[("value", ("dp", "target_quantile"), 2**70)])
@example(base="example", edits=[("value", ("dp", "clip_learning_rate"), -(2**70))])
@example(base="example", edits=[("value", ("dp", "count_noise_stddev"), math.nan)])
# a blank path: state = "" loaded (a database at ".", a ledger at ".ledger")
@example(base="every", edits=[("value", ("server", "state"), "")])
@example(base="every", edits=[("value", ("server", "certificates"), "\u2028")])
# a distributed clip of 1e-200: ZeroDivisionError sizing the ring's scale
@example(base="fixed", edits=[("value", ("dp", "clip"), 1e-200)])
# ... and one of 2.7e154: OverflowError squaring the noise share's std
@example(base="fixed", edits=[("value", ("dp", "noise_multiplier"), 2.6815615859885194e154)])
# rounds = 2**70: OverflowError in the accountant, from the server's constructor
@example(base="every", edits=[("value", ("federation", "rounds"), 2**70)])
# noise_multiplier = 1e-300: the accountant's solver's ValueError, from the server
@example(base="ckks", edits=[("value", ("dp", "noise_multiplier"), 1e-300)])
# "dp.record_clip ... goes with unit = 'record'", for a dropped dp.unit
@example(base="record", edits=[("drop", ("dp", "unit"))])
# "backend.key_holder names the key holder of a backend that needs one", for a dropped
# backend.name
@example(base="ckks", edits=[("drop", ("backend", "name"))])
# "sampling.count is for kind = 'fixed'", for a dropped sampling.kind
@example(base="fixed", edits=[("drop", ("sampling", "kind"))])
# each of these loaded, out of a range it now has (upper-bounds review, 2026-12-05)
@example(base="every", edits=[("value", ("server", "max_message_bytes"), 2**70)])
@example(base="every", edits=[("value", ("server", "max_connections"), 2**31 - 1)])
@example(base="every", edits=[("value", ("server", "quorum_wait_seconds"), 1e300)])
@example(base="every", edits=[("value", ("federation", "seed"), -1)])
@example(base="ckks", edits=[("value", ("dp", "noise_multiplier"), 1e30)])
@example(base="every", edits=[("value", ("dp", "clip_learning_rate"), 1e308)])
@example(
    base="every",
    edits=[
        ("value", ("deadlines", "round_seconds"), 1e300),
        ("value", ("deadlines", "training_seconds"), 1e300),
    ],
)
def test_a_mistaken_federation_file_is_refused_in_one_line_naming_the_key(
    base: str, edits: list[Edit]
) -> None:
    text, places, not_toml = edited_text(copy.deepcopy(BASES[base]), edits, "federation")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "federation.toml"
        path.write_text(text, encoding="utf-8")
        check(path, edits, places, not_toml)


@pytest.mark.parametrize("base", sorted(BASES))
def test_each_base_loads_and_is_in_range(base: str, tmp_path: Path) -> None:
    """The fuzz's starting points are valid: a refusal is the edit's, not the base's."""
    path = tmp_path / "federation.toml"
    path.write_text(toml_text(BASES[base]), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = FederationConfig.load(path)
    assert ranges_violated(config) == []
