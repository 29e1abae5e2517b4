"""One interface, every backend: sums within the documented bound, dropouts reported."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg
from secagg.aggregation import BACKENDS, get_backend
from secagg.crypto.stream import KeyedStream
from secagg.dp.central import CentralGaussian
from secagg.dp.clipping import clip_l2
from secagg.errors import (
    ConfigurationError,
    RoundAborted,
    SecAggError,
)

MASKING = ("secagg", "secagg+")


def _updates(n: int, d: int, seed: bytes, bound: float = 1.0) -> np.ndarray:
    raw = (KeyedStream(seed).uniform(n * d).reshape(n, d) * 2 - 1) * bound
    return raw


@settings(max_examples=60, deadline=None)
@given(
    backend=st.sampled_from(("plain", *MASKING, "ckks")),
    n=st.integers(2, 12),
    d=st.integers(1, 300),
    bound=st.sampled_from([1e-3, 1.0, 50.0]),
    seed=st.binary(min_size=16, max_size=16),
    data=st.data(),
)
def test_every_backend_sums_within_its_bound_and_reports_dropouts(
    backend: str, n: int, d: int, bound: float, seed: bytes, data: st.DataObject
) -> None:
    updates = _updates(n, d, seed, bound)
    dropped = data.draw(st.sets(st.integers(0, n - 1), max_size=max(0, n // 10)))
    options: dict[str, object] = {} if backend == "plain" else {"value_bound": bound}
    if backend in MASKING:
        options["bits"] = data.draw(st.sampled_from([32, 64]))
    total, report = secagg.aggregate(updates, backend, dropped=dropped, **options)
    survivors = [p for p in range(n) if p not in dropped]
    assert report.backend == backend
    assert report.contributed == tuple(survivors)
    assert report.dropped == tuple(sorted(dropped))
    # against the exact sum: the float64 sum of the updates rounds too, by more than the
    # whole bound at 64 bits (n = 7, d = 261, bound 1: 1.78e-15 against 1.56e-15)
    assert _exact_max_error(total, updates[survivors]) <= report.error_bound


def _exact_max_error(total: np.ndarray, rows: np.ndarray) -> Fraction:
    """max_j |total_j - sum_i rows_ij|, in exact rational arithmetic."""
    return max(
        (
            abs(Fraction(float(t)) - sum((Fraction(float(x)) for x in column), Fraction(0)))
            for t, column in zip(total, rows.T, strict=True)
        ),
        default=Fraction(0),
    )


def test_the_exact_error_is_exact() -> None:
    """The reference the bound is held to: a float64 sum of 0.1 ten times misses 1 by an
    ulp, which the exact error sees and a float64 comparison would not."""
    rows = np.full((10, 1), 0.1)
    assert _exact_max_error(np.array([1.0]), rows) == abs(1 - 10 * Fraction(0.1))
    assert _exact_max_error(np.array([1.0]), rows) > 0
    assert _exact_max_error(rows.sum(axis=0), rows) > 0


@pytest.mark.parametrize("backend", MASKING)
def test_masking_below_threshold_aborts_instead_of_summing(backend: str) -> None:
    from secagg.aggregation import run_local_round

    updates = _updates(10, 50, b"t" * 16)
    # 8 of 10 vanish after sharing their keys, before their masked input: the survivors
    # cannot reconstruct 8 clients' mask keys, so the round aborts rather than sum wrongly
    with pytest.raises(RoundAborted):
        run_local_round(get_backend(backend), updates, vanish=dict.fromkeys(range(8), 2))


@pytest.mark.parametrize("backend", ("plain", *MASKING, "ckks"))
def test_clipping_and_central_noise_work_unchanged_through_the_backend(backend: str) -> None:
    n, d, clip = 8, 20_000, 1.0
    raw = _updates(n, d, b"c" * 16, bound=0.05)  # norms about 4: clipping is active
    clipped = np.stack([clip_l2(u, clip).vector for u in raw])
    options = {} if backend == "plain" else {"value_bound": clip}
    total, _ = secagg.aggregate(clipped, backend, **options)
    mechanism = CentralGaussian(clip=clip, noise_multiplier=1.0, expected_clients=n)
    noised = mechanism.noised_sum(total)
    noise = noised - clipped.sum(axis=0)
    assert np.std(noise) == pytest.approx(mechanism.stddev, rel=0.05)


def test_adaptive_clipping_through_the_secure_sum() -> None:
    """Clients send [clipped update, 1[norm <= C] - 1/2] through SecAgg+; the clip follows."""
    from secagg.dp.adaptive import AdaptiveClipping, append_report, split_report, unclipped_report
    from secagg.dp.noise import gaussian

    # 30 clients (60 before; the cost is the 25 secure sums): the mean of the last eight
    # clips lay in [0.90, 1.06] in 300 plain-sum replays of this loop, as with 60
    n, d = 30, 8
    state = AdaptiveClipping(noise_multiplier=0.5, expected_clients=n, initial_clip=0.4)
    stream = KeyedStream()
    for _ in range(25):
        directions = gaussian(1.0, n * d, stream).reshape(n, d)
        directions /= np.linalg.norm(directions, axis=1)[:, None]
        norms = np.exp(0.5 * gaussian(1.0, n, stream))  # lognormal(0, 0.5): median 1
        rows, reports = [], []
        for direction, norm in zip(directions, norms, strict=True):
            result = clip_l2(direction * norm, state.clip)
            reports.append(unclipped_report(result.norm, state.clip))
            rows.append(append_report(result.vector, reports[-1]))
        total, _ = secagg.aggregate(np.stack(rows), "secagg+", value_bound=max(state.clip, 0.5))
        update_sum, report_sum = split_report(total)
        assert report_sum == pytest.approx(sum(reports), abs=1e-6)  # exact up to rounding
        assert np.linalg.norm(update_sum) <= n * state.clip + 1e-6
        state.update(state.noised_count(report_sum, stream))
    assert 0.7 < np.mean([h["next_clip"] for h in state.history[-8:]]) < 1.4


def _ckks_round(n: int, d: int):
    """A CKKS server session with its key holder's key, and the announced spec."""
    from secagg.aggregation import HELPER, Announce, decode_spec

    backend = get_backend("ckks")
    helper = backend.helper()
    server = backend.server(backend.plan(n, d))
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=1))
    assert isinstance(announce, Announce)
    return backend, server, helper, decode_spec(announce.spec)


def test_ckks_rounds_refuse_foreign_contexts_and_lone_contributors() -> None:
    from secagg.aggregation import HELPER
    from secagg.he.errors import ContextMismatch

    n, d = 3, 100
    updates = _updates(n, d, b"f" * 16)
    backend, first, _, spec = _ckks_round(n, d)
    _, _, _, other = _ckks_round(n, d)  # same parameters, another key pair
    with pytest.raises(ContextMismatch):
        first.handle(0, backend.client(other, 0).set_input(updates[0])[0])
    first.handle(0, backend.client(spec, 0).set_input(updates[0])[0])
    assert first.close_phase() == [] and first.done
    with pytest.raises(RoundAborted, match="at least 2"):
        first.finish()  # one contribution would be one client's update in the clear
    # and the key holder itself refuses to decrypt a sum of one
    _, lone, holder, spec = _ckks_round(n, d)
    lone.handle(1, backend.client(spec, 1).set_input(updates[1])[0])
    lone._received.add(2)  # a server lying that a second client contributed
    lone._phase = "contribution"
    (request,) = lone.close_phase()
    with pytest.raises(SecAggError, match="at least 2"):
        holder.handle(request.payload, round_number=1)
    assert request.party == HELPER


def test_ckks_server_side_holds_no_secret_key() -> None:
    from secagg.he.errors import SecretKeyUnavailable

    _, server, helper, _ = _ckks_round(4, 10)
    assert not server.context.is_private()
    with pytest.raises(SecretKeyUnavailable):
        server.context.decrypt()
    assert helper._holder.is_private()


def test_backend_registry_and_argument_checks() -> None:
    assert set(BACKENDS) == {"plain", "secagg", "secagg+", "ckks"}
    with pytest.raises(ConfigurationError, match="unknown backend"):
        get_backend("paillier")
    with pytest.raises(ConfigurationError):
        get_backend("plain", bits=32)  # an option the plain backend does not take
    with pytest.raises(ConfigurationError):
        secagg.aggregate(np.zeros(5), "plain")
    with pytest.raises(ConfigurationError):
        secagg.aggregate(np.zeros((3, 2)), "plain", dropped=[7])


def test_backend_benchmark_compares_backends_in_one_run() -> None:
    import json

    from click.testing import CliRunner

    from secagg.apps.cli import main

    result = CliRunner().invoke(main, ["bench", "ckks", "--n", "3", "--d", "5000"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{") :])
    cells = {c["backend"]: c for c in payload["cells"]}
    assert set(cells) == {"plain", "secagg+", "ckks"}
    for cell in cells.values():
        assert cell["max_abs_error"] <= cell["error_bound"]
        assert cell["bytes_per_parameter"] > 0 and cell["server_seconds"] >= 0
    assert cells["secagg+"]["bytes_per_parameter"] < cells["ckks"]["bytes_per_parameter"]
    assert "server_vs_plain" in cells["ckks"]


@pytest.mark.parametrize(
    ("updates", "named"),
    [
        ([[1.0, 2.0], [3.0]], "ragged"),  # numpy: "inhomogeneous shape" ValueError
        (np.array([[1, "a"], [2, 3]], dtype=object), "real numbers"),  # ValueError deep down
        (np.array([[1 + 2j, 0], [0, 0]]), "real numbers"),  # imaginary part dropped silently
        ([["0.5", "0.1"], ["0.2", "0.3"]], "real numbers"),  # text parsed as numbers
    ],
)
def test_aggregate_refuses_updates_that_are_not_a_real_matrix(updates: object, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        secagg.aggregate(updates, "plain")


def test_aggregate_takes_an_object_array_of_numbers() -> None:
    rows = np.array([[0.5, 0.25], [0.125, 0.0]], dtype=object)
    total, _ = secagg.aggregate(rows, "plain")
    assert total.tolist() == [0.625, 0.25]


@pytest.mark.parametrize("dropped", [3, None, ["a"], [1.7], [True]])
def test_aggregate_refuses_dropped_clients_that_are_not_client_indices(dropped: object) -> None:
    # before: 3 and None raised a bare TypeError, "a" a ValueError, and 1.7 dropped client 1
    with pytest.raises(ConfigurationError, match="dropped"):
        secagg.aggregate(np.zeros((3, 2)), "plain", dropped=dropped)  # type: ignore[arg-type]


def test_aggregate_takes_numpy_client_indices_and_repeated_ones() -> None:
    rows = np.arange(6.0).reshape(3, 2)
    _, report = secagg.aggregate(rows, "plain", dropped=np.array([1, 1]))
    assert report.dropped == (1,)


@pytest.mark.parametrize("backend", [["plain"], {"name": "plain"}, 3])
def test_a_backend_that_is_neither_a_name_nor_a_backend_is_refused(backend: object) -> None:
    with pytest.raises(ConfigurationError, match="backend"):
        secagg.aggregate(np.zeros((3, 2)), backend)  # type: ignore[arg-type]


@pytest.mark.parametrize("bound", [0.0, -1.0, float("nan"), True, "1"])
def test_the_plain_backend_refuses_a_bad_value_bound_by_name(bound: object) -> None:
    # before: 0 and -1 came back as a MalformedMessage about the round spec, "1" as a
    # numpy TypeError, and NaN or True were taken (NaN: no bound at all)
    with pytest.raises(ConfigurationError, match="value_bound"):
        secagg.aggregate(np.zeros((3, 2)), "plain", value_bound=bound)


def test_a_plain_sum_that_overflows_float64_aborts_instead_of_returning_inf() -> None:
    with pytest.raises(RoundAborted, match="overflow"):
        secagg.aggregate(np.array([[1e308, 0.0], [1e308, 0.0]]), "plain")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("value_bound", "1"),  # float("1"): a string was taken as the bound
        ("value_bound", True),  # taken as 1.0
        ("precision", True),  # taken as 1.0: a sum off by up to 1 per coordinate
        ("max_clients", "4"),  # TypeError: '>' not supported between str and int
        ("max_clients", 1.5),  # taken
        ("max_clients", 0),  # taken
    ],
)
def test_a_ckks_option_of_the_wrong_type_or_range_is_refused_by_name(
    option: str, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=option):
        get_backend("ckks", **{option: value})


def test_a_tiny_ckks_value_bound_is_refused_as_a_parameter_error_not_an_overflow() -> None:
    # before: OverflowError (cannot convert float infinity to integer) choosing the scale
    with pytest.raises(ConfigurationError, match="precision"):
        secagg.aggregate(np.full((3, 2), 1e-300), "ckks", value_bound=1e-300)
