"""The distributed discrete Gaussian, alone and through the masking engine.

Spread checks use 5.5-sigma bands on sample variances (false alarm about 4e-8
each); mean checks likewise.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.dp.distributed import (
    DistributedDiscreteGaussian,
    calibrate_noise_multiplier,
    honest_noise_contributors,
    wrap_stddevs,
)
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError
from secagg.protocol import simulate_round

Z_BAND = 5.5


def _mechanism(d: int, n: int, **kw: object) -> DistributedDiscreteGaussian:
    args: dict[str, object] = dict(dimension=d, clip=1.0, noise_multiplier=1.0, expected_clients=n)
    return DistributedDiscreteGaussian(**(args | kw))  # type: ignore[arg-type]


def _updates(n: int, d: int, norm: float = 2.0) -> np.ndarray:
    """n random updates of L2 norm about ``norm`` (so clipping to 1 is active)."""
    return gaussian(norm / math.sqrt(d), n * d).reshape(n, d)


def _ring_sum(words: list[np.ndarray]) -> np.ndarray:
    total = np.zeros_like(words[0])
    for w in words:
        total += w
    return total


def test_noise_of_the_decoded_sum_has_the_configured_spread() -> None:
    n, d = 20, 1 << 15
    mech = _mechanism(d, n)
    seed = os.urandom(16)
    words = [mech.encode(np.zeros(d), seed) for _ in range(n)]
    noise = mech.decode(_ring_sum(words), seed)  # zero updates: all that is left is noise
    expected = mech.sum_stddev(n)
    # n shares of sigma_int^2 sum to about (z C)^2: the central DP-FedAvg noise
    assert expected == pytest.approx(1.0, rel=1e-3)
    assert abs(noise.mean()) < Z_BAND * expected / math.sqrt(d)
    assert abs(noise.var() / expected**2 - 1) < Z_BAND * math.sqrt(2 / d)


def test_decoded_sum_is_the_clipped_sum_plus_noise_over_many_seeds() -> None:
    n, d, rounds = 10, 512, 20
    mech = _mechanism(d, n)
    errors = []
    for _ in range(rounds):
        seed = os.urandom(16)
        updates = _updates(n, d)
        clipped = updates / np.maximum(1.0, np.linalg.norm(updates, axis=1))[:, None]
        words = [mech.encode(u, seed) for u in updates]
        errors.append(mech.decode(_ring_sum(words), seed) - clipped.sum(axis=0))
    err = np.concatenate(errors)
    sd = mech.sum_stddev(n)
    assert abs(err.mean()) < Z_BAND * sd / math.sqrt(err.size)  # unbiased
    assert abs(err.var() / sd**2 - 1) < Z_BAND * math.sqrt(2 / err.size) + 1e-6


@pytest.mark.parametrize("graph", ["harary", "complete"])
def test_through_the_masking_engine_with_dropouts(graph: str) -> None:
    """Clients encode, mask and sum through SecAgg(+); some drop before their masked input."""
    n, d, rounds = 24, 256, 8
    mech = _mechanism(d, n)
    dropped = [3, 11]  # vanish before sending the masked input: their noise is missing
    survivors = [p for p in range(n) if p not in dropped]
    errors = []
    stream = KeyedStream()
    for r in range(rounds):
        seed = os.urandom(16)
        updates = _updates(n, d)
        clipped = updates / np.maximum(1.0, np.linalg.norm(updates, axis=1))[:, None]
        words = np.stack([mech.encode(u, seed, stream) for u in updates])
        word_sum = simulate_round(words, graph=graph, dropped={"masked_input": dropped}, seed=r)
        assert np.array_equal(word_sum, _ring_sum([words[p] for p in survivors]))
        errors.append(mech.decode(word_sum, seed) - clipped[survivors].sum(axis=0))
    err = np.concatenate(errors)
    sd = mech.sum_stddev(len(survivors))  # only the survivors' noise is in the sum
    assert abs(err.mean()) < Z_BAND * sd / math.sqrt(err.size)
    assert abs(err.var() / sd**2 - 1) < Z_BAND * math.sqrt(2 / err.size) + 1e-6


def test_dropouts_raise_the_reported_epsilon_honestly() -> None:
    n, d = 100, 1 << 16
    mech = _mechanism(d, n, bits=20, beta=0.0)
    args = dict(sample_rate=0.01, rounds=1000, delta=1e-5)
    full = mech.epsilon(noise_contributors=n, **args)  # type: ignore[arg-type]
    survivors = honest_noise_contributors(90, assumed_corrupt=5)
    assert survivors == 85
    fewer = mech.epsilon(noise_contributors=survivors, **args)  # type: ignore[arg-type]
    assert fewer > full
    assert mech.epsilon(noise_contributors=0, **args) == math.inf  # type: ignore[arg-type]
    # close to the continuous Gaussian's 2.45 through the same subsampling bound
    assert 2.4 < full < 2.6


def test_conditional_rounding_keeps_the_norm_bound() -> None:
    d = 1000
    mech = _mechanism(d, 10, bits=12, wrap_probability=1e-3)  # coarse: rounding matters
    limit = mech.norm_bound * mech.scale
    stream = KeyedStream()
    for _ in range(20):
        x = _updates(1, mech.padded, norm=1.0)[0]
        scaled = x / max(1.0, float(np.linalg.norm(x))) * mech.scale
        rounded = mech.round_within_bound(scaled, stream)
        assert float(np.linalg.norm(rounded.astype(np.float64))) <= limit
        assert np.all(np.abs(rounded - scaled) < 1)
    assert mech.sensitivity >= limit
    assert mech.l1_sensitivity >= mech.sensitivity


@pytest.mark.parametrize("bits", [12, 20, 31, 33, 63, 64])
def test_any_modulus_rides_in_the_engine_words(bits: int) -> None:
    n, d = 8, 64
    mech = _mechanism(d, n, bits=bits)
    seed = os.urandom(16)
    updates = _updates(n, d, norm=0.5)  # unclipped
    words = [mech.encode(u, seed) for u in updates]
    assert all(w.dtype == mech.word_dtype for w in words)
    err = mech.decode(_ring_sum(words), seed) - updates.sum(axis=0)
    assert np.all(np.abs(err) < 8 * mech.sum_stddev(n))


def test_high_bits_above_a_small_modulus_are_random() -> None:
    """Zero high bits would make the sum's high part count the negative noised values."""
    n, d, bits = 10, 1024, 16
    mech = _mechanism(d, n, bits=bits)
    seed = os.urandom(16)
    words = [mech.encode(np.zeros(d), seed) for _ in range(n)]
    high = (_ring_sum(words) >> np.uint32(bits)).astype(np.int64)
    # uniform on [0, 2^16): mean 32767.5, std 18918; a count of negatives would be <= 10
    assert abs(high.mean() - 32767.5) < Z_BAND * 18918 / math.sqrt(d)
    assert high.max() > n


def test_scale_choice_and_wrap_parameters() -> None:
    assert wrap_stddevs(1e-4) == pytest.approx(3.8906, abs=1e-3)
    small = _mechanism(1 << 16, 100, bits=16, beta=0.0)
    # the note's 16-bit example: s = 7845.08 for n = 100, d = 2^16, C = 1, z = 1
    assert small.scale == pytest.approx(7845.08, rel=1e-4)
    with pytest.raises(ConfigurationError, match="bits"):
        _mechanism(1 << 16, 100_000, bits=8)


@pytest.mark.parametrize(
    "bad",
    [
        dict(dimension=0),
        dict(clip=0.0),
        dict(noise_multiplier=0.0),
        dict(expected_clients=0),
        dict(beta=1.0),
        dict(bits=4),
        dict(bits=65),
        dict(wrap_probability=0.0),
    ],
)
def test_bad_parameters_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        _mechanism(64, 10, **bad)


@pytest.mark.parametrize("clip", [5e-324, 1e-310])
def test_a_clip_no_float_scale_encodes_is_refused_by_name(clip: float) -> None:
    # before: ZeroDivisionError in the heuristic scale (c * c underflowed to 0)
    with pytest.raises(ConfigurationError, match="too small for float64"):
        DistributedDiscreteGaussian(
            dimension=4, clip=clip, noise_multiplier=1.0, expected_clients=3
        )


@pytest.mark.parametrize("clip", [1e-200, 1e-160])
def test_a_tiny_clip_gets_the_scale_of_a_unit_clip_rescaled(clip: float) -> None:
    # before: ZeroDivisionError; the scale is invariant to the units of the updates
    tiny = DistributedDiscreteGaussian(
        dimension=4, clip=clip, noise_multiplier=1.0, expected_clients=3
    )
    unit = DistributedDiscreteGaussian(
        dimension=4, clip=1.0, noise_multiplier=1.0, expected_clients=3
    )
    assert tiny.local_sigma == unit.local_sigma
    assert math.isclose(tiny.scale * clip, unit.scale, rel_tol=1e-12)


def test_encode_and_decode_check_shapes() -> None:
    mech = _mechanism(100, 5)
    with pytest.raises(ConfigurationError):
        mech.encode(np.zeros(99), os.urandom(16))
    with pytest.raises(ConfigurationError):
        mech.decode(np.zeros(100, dtype=np.uint32), os.urandom(16))


def test_the_accountant_counts_the_colluders_the_protocol_tolerates() -> None:
    """DP review: colluders were floored for accounting but counted larger by the
    protocol; both now use graph_params.tolerated_colluders."""
    from secagg.dp.distributed import assumed_colluders
    from secagg.protocol import RoundConfig
    from secagg.protocol.graph_params import tolerated_colluders

    for n in (4, 5, 8, 19, 20, 40, 100, 333):
        for gamma in (0.0, 0.05, 0.1):
            assumed = assumed_colluders(n, gamma)
            assert assumed == tolerated_colluders(n, gamma), (n, gamma)  # what it is sized for
            # and the round's parameters really tolerate that many
            assert RoundConfig.create(n, 4, corrupt_fraction=gamma).tolerated_colluders >= assumed


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5])
def test_a_round_of_two_or_three_counts_every_other_client_as_a_possible_colluder(
    gamma: float,
) -> None:
    """Review of a run folder (2026-12-03): a round of 2 was charged at 2 honest shares,
    because the protocol sizes for 0 colluders of 2 (with 1 the sum reveals the other
    input whatever the parameters). DP still holds on the honest client's own share, so
    the accountant assumes the threat model's 2 colluders wherever others can fill them."""
    from secagg.dp.distributed import assumed_colluders, honest_noise_contributors
    from secagg.protocol.graph_params import tolerated_colluders

    assert [assumed_colluders(n, gamma) for n in (1, 2, 3)] == [0, 1, 2]
    if gamma < 0.5:  # the protocol's own count there, which undercounted
        assert tolerated_colluders(2, gamma) == 0 and tolerated_colluders(3, gamma) <= 1
    for n in (2, 3):  # the protected client's own share is all that is counted
        assert honest_noise_contributors(n, assumed_colluders(n, gamma)) == 1
    for n in range(1, 60):  # never fewer than the protocol's, never all of the round
        assumed = assumed_colluders(n, gamma)
        assert tolerated_colluders(n, gamma) <= assumed <= max(n - 1, 0) or n == 1


# --- record level: one vector sums many protected units --------------------------------


def _record_level(**kw: object) -> DistributedDiscreteGaussian:
    args: dict[str, object] = dict(
        dimension=33, clip=0.01, noise_multiplier=2.0, expected_clients=8, vector_bound=10.0
    )
    return DistributedDiscreteGaussian(**(args | kw))  # type: ignore[arg-type]


def test_record_level_sensitivity_is_one_units_clip_plus_a_grid_step_per_coordinate() -> None:
    mech = _record_level()
    assert mech.record_level and mech.beta == 0.0  # plain rounding: the coupling argument
    g = mech.granularity
    assert mech.norm_bound == pytest.approx(0.01 + g * math.sqrt(mech.padded))
    assert mech.rounded_bound == pytest.approx(10.0 + g * math.sqrt(mech.padded))
    # the noise is sized for one unit, not for the whole vector
    assert mech.local_sigma == math.ceil(2.0 * 0.01 * mech.scale / math.sqrt(8))
    client = _mechanism(33, 8, clip=10.0, noise_multiplier=2.0)
    assert not client.record_level and client.norm_bound == pytest.approx(client.rounded_bound)


def test_record_level_encode_keeps_a_vector_far_above_one_units_clip() -> None:
    mech = _record_level(noise_multiplier=1e-6)  # almost no noise: the signal is visible
    seed = os.urandom(16)
    update = np.full(33, 0.5)  # norm 2.9: far above the unit clip 0.01, under the bound 10
    decoded = mech.decode(mech.encode(update, seed), seed)
    assert decoded == pytest.approx(update, abs=1e-4)
    big = np.full(33, 5.0)  # norm 28.7: clipped to the vector bound 10
    decoded = mech.decode(mech.encode(big, seed), seed)
    assert np.linalg.norm(decoded) == pytest.approx(10.0, rel=1e-4)


def test_record_level_one_unit_moves_the_rounded_vector_by_the_sensitivity_at_most() -> None:
    """The coupling behind the sensitivity: the same rounding uniforms for both vectors."""
    from secagg.encoding.fixed_point import stochastic_round
    from secagg.encoding.rotation import RandomizedHadamard

    mech = _record_level(noise_multiplier=1.0)
    rng = np.random.default_rng(5)  # test data only
    seed = os.urandom(16)
    rotation = RandomizedHadamard(33, seed)
    for _ in range(50):
        base = rng.normal(size=33)
        unit = rng.normal(size=33)
        unit *= 0.01 / np.linalg.norm(unit)
        key = os.urandom(16)
        a = stochastic_round(rotation.rotate(base) * mech.scale, KeyedStream(key))
        b = stochastic_round(rotation.rotate(base + unit) * mech.scale, KeyedStream(key))
        assert np.linalg.norm(a - b) <= mech.sensitivity


def test_record_level_epsilon_ignores_the_vector_bound() -> None:
    """What the guarantee depends on: z, the honest shares, the rounds; not how large the
    whole vector may be."""
    # one scale both rings have room for (1e9, used until 2026-12-06, was about 180 times the
    # largest the bound 100 leaves 8 clients on 32 bits: its sums wrapped, and a
    # given scale beyond the ring is now refused, tests/dp/test_distributed_scale_headroom.py)
    small = _record_level(vector_bound=1.0, scale=1e6)
    large = _record_level(vector_bound=100.0, scale=1e6)
    args = dict(noise_contributors=4, sample_rate=1.0, rounds=10, delta=1e-5)
    assert small.epsilon(**args) == pytest.approx(large.epsilon(**args), rel=1e-9)


def test_a_vector_bound_below_the_clip_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="vector_bound"):
        _record_level(vector_bound=0.001)


# --- planning: the honest shares and the noise a budget needs (moved from the simulator) --


@pytest.mark.parametrize(
    ("expected", "corrupt", "dropout", "honest"),
    [
        (8, 0.25, 0.25, 4),  # the default fraud world: 2 colluders, 2 dropouts tolerated
        (8, 0.0, 0.0, 6),  # at least 2 colluders at every cohort size
        (100, 0.05, 0.10, 85),
        (3, 0.0, 0.0, 1),  # a round of 3: two others may collude
        (1, 0.5, 0.5, 1),  # never fewer than the protected client's own share
    ],
)
def test_planned_honest_shares(expected: int, corrupt: float, dropout: float, honest: int) -> None:
    from secagg.dp.distributed import assumed_colluders, planned_honest_shares

    assert planned_honest_shares(expected, corrupt, dropout) == honest
    assert honest == max(
        1, expected - assumed_colluders(expected, corrupt) - math.floor(dropout * expected)
    )


def test_planned_honest_shares_refuses_an_empty_cohort_or_certain_dropout() -> None:
    from secagg.dp.distributed import planned_honest_shares

    with pytest.raises(ConfigurationError, match="expected_clients"):
        planned_honest_shares(0, 0.1)
    with pytest.raises(ConfigurationError, match="tolerated_dropout"):
        planned_honest_shares(10, 0.1, 1.0)


@pytest.mark.parametrize(("record", "honest"), [(False, 4), (True, 4), (False, 8)])
def test_the_calibrated_noise_is_the_smallest_on_its_grid_that_meets_the_budget(
    record: bool, honest: int
) -> None:
    from secagg.dp.accounting import noise_multiplier_for
    from secagg.dp.distributed import calibrate_noise_multiplier

    clip, bound = (0.01, 5.0) if record else (1.0, 0.0)
    plan = dict(epsilon=3.0, delta=1e-5, rounds=10, dimension=257, expected_clients=8)

    def spent(z: float) -> float:
        ddg = DistributedDiscreteGaussian(
            dimension=257, clip=clip, noise_multiplier=z, expected_clients=8, bits=32,
            vector_bound=bound,
        )  # fmt: skip
        return ddg.epsilon(noise_contributors=honest, sample_rate=1.0, rounds=10, delta=1e-5)

    z = calibrate_noise_multiplier(**plan, clip=clip, honest_shares=honest, vector_bound=bound)
    gaussian_z = noise_multiplier_for(3.0, 1e-5, 1.0, 10)
    assert z >= gaussian_z  # discreteness and rounding only ever cost noise
    assert spent(z) <= 3.0
    if z > gaussian_z:  # one grid step less would overspend
        assert spent(z / 1.02) > 3.0
    # fewer honest shares (each carries a smaller part of the noise): never less noise
    if honest > 1:
        fewer = calibrate_noise_multiplier(
            **plan, clip=clip, honest_shares=honest - 1, vector_bound=bound
        )
        assert fewer >= z
    with pytest.raises(ConfigurationError, match="epsilon"):
        calibrate_noise_multiplier(**{**plan, "epsilon": 0.0}, clip=clip, honest_shares=honest)


# --- a sampled cohort is drawn by the server: it can hold all the population's colluders


@pytest.mark.parametrize(
    ("cohort", "population", "gamma"),
    [(6, 12, 0.25), (8, 32, 0.25), (8, 32, 0.1), (5, 100, 0.05), (3, 40, 0.25), (30, 40, 0.25)],
)
def test_a_sampled_cohort_counts_the_populations_colluders(
    cohort: int, population: int, gamma: float
) -> None:
    """DP audit of 2026-12-03: 12 clients with 3 colluders, a cohort of 6 charged at 4
    honest shares; the server that draws the cohort can put all 3 colluders in it."""
    from secagg.dp.distributed import assumed_colluders

    in_population = assumed_colluders(population, gamma)
    packed = assumed_colluders(cohort, gamma, population)
    assert packed == max(assumed_colluders(cohort, gamma), min(in_population, cohort - 1))
    assert assumed_colluders(cohort, gamma) <= packed <= cohort - 1
    # everyone takes part: the cohort's own count, as before
    assert assumed_colluders(population, gamma, population) == in_population
    assert assumed_colluders(cohort, gamma, None) == assumed_colluders(cohort, gamma)


def test_the_audits_case_is_charged_at_three_honest_shares_not_four() -> None:
    from secagg.dp.distributed import assumed_colluders, planned_honest_shares

    assert assumed_colluders(12, 0.25) == 3
    assert 6 - assumed_colluders(6, 0.25) == 4  # what a cohort of 6 was charged at
    assert 6 - assumed_colluders(6, 0.25, population=12) == 3
    assert planned_honest_shares(6, 0.25, population=12) == 3
    assert planned_honest_shares(6, 0.25) == 4
    # a cohort the size of its population is everyone: nothing changes
    assert planned_honest_shares(12, 0.25, population=12) == planned_honest_shares(12, 0.25)


@pytest.mark.parametrize(("survivors", "corrupt"), [(10, 0.5), (10.0, 1), ("10", 1), (10, True)])
def test_honest_noise_contributors_counts_in_integers(survivors: object, corrupt: object) -> None:
    # before: (10, 0.5), a fraction where a count belongs, gave 9.5 honest shares, and
    # "10" raised TypeError
    with pytest.raises(ConfigurationError):
        honest_noise_contributors(survivors, corrupt)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dimension", "10"),
        ("dimension", True),
        ("clip", "1"),
        ("noise_multiplier", None),
        ("bits", 32.0),
    ],
)
def test_the_mechanism_refuses_a_parameter_of_the_wrong_type(field: str, value: object) -> None:
    # before: "10", "1" and None raised TypeError; True and 32.0 were taken
    args: dict[str, object] = dict(
        dimension=10, clip=1.0, noise_multiplier=1.0, expected_clients=10
    )
    with pytest.raises(ConfigurationError, match=field):
        DistributedDiscreteGaussian(**(args | {field: value}))  # type: ignore[arg-type]


_COUNTS = ("expected_clients", "max_rounding_tries")
_REALS = ("beta", "wrap_probability", "scale", "vector_bound")


@pytest.mark.parametrize(
    ("field", "value"),
    [(f, v) for f in _COUNTS for v in (1.5, 2.0, True, False, 0, -1, "3", None, math.nan)]
    + [(f, v) for f in _REALS for v in (True, False, "0.5", None, math.nan, math.inf)]
    + [("beta", -0.1), ("wrap_probability", 1.0), ("scale", -1.0), ("vector_bound", -1.0)],
)
def test_every_argument_of_the_mechanism_is_refused_by_name(field: str, value: object) -> None:
    """Before: expected_clients=1.5 or True and max_rounding_tries=1.5 were taken (a
    share sized for 1.5 clients), scale/vector_bound True, False or None were taken as
    1, 0 or "choose for me", and a str or None elsewhere raised a comparison's
    TypeError that named nothing."""
    args: dict[str, object] = dict(
        dimension=10, clip=1.0, noise_multiplier=1.0, expected_clients=10
    )
    with pytest.raises(ConfigurationError, match=field):
        DistributedDiscreteGaussian(**(args | {field: value}))  # type: ignore[arg-type]


def test_integral_numpy_counts_and_the_documented_defaults_are_still_taken() -> None:
    """The refusals above are about types and ranges, not about the numbers callers
    really pass: numpy integers from a config, and 0.0 for "choose the scale"."""
    mech = DistributedDiscreteGaussian(
        dimension=np.int64(10),  # type: ignore[arg-type]
        clip=1.0,
        noise_multiplier=1.0,
        expected_clients=np.int32(7),  # type: ignore[arg-type]
        max_rounding_tries=np.int64(5),  # type: ignore[arg-type]
        scale=0.0,
        vector_bound=0,
        beta=0,
    )
    assert mech.expected_clients == 7 and mech.scale > 1 and mech.vector_bound == 1.0


@pytest.mark.parametrize("value", [-1, False, True, 1.5, "3", None, math.nan])
def test_the_mechanisms_epsilon_refuses_a_count_that_is_not_one(value: object) -> None:
    """noise_contributors = 0 is "no honest share": documented to return inf. -1 and
    False returned inf too, "3" and None raised TypeError, True counted as one share
    and 1.5 reached the accountant."""
    mech = _mechanism(64, 10)
    with pytest.raises(ConfigurationError, match="noise_contributors"):
        mech.epsilon(noise_contributors=value, sample_rate=1.0, rounds=1, delta=1e-5)  # type: ignore[arg-type]
    assert mech.epsilon(noise_contributors=0, sample_rate=1.0, rounds=1, delta=1e-5) == math.inf


@pytest.mark.parametrize("value", [1.5, 2.0, True, False, "3", None, math.nan])
def test_planned_honest_shares_takes_an_integer_cohort_only(value: object) -> None:
    """Before: 1.5 and True were taken as cohorts, "3" and None raised TypeError, and
    NaN raised ValueError (cannot convert float NaN to integer)."""
    from secagg.dp.distributed import planned_honest_shares

    with pytest.raises(ConfigurationError, match="expected_clients"):
        planned_honest_shares(value, 0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0.1", None, True, math.nan])
def test_planned_honest_shares_refuses_a_dropout_that_is_not_a_fraction(value: object) -> None:
    from secagg.dp.distributed import planned_honest_shares

    with pytest.raises(ConfigurationError, match="tolerated_dropout"):
        planned_honest_shares(10, 0.1, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mechanism", "seed", "named"),
    [("ddg", None, "rotation_seed"), ("ddg", 12, "rotation_seed"), ("x", bytes(16), "mechanism")],
)
def test_a_noise_share_round_of_the_wrong_types_is_refused_by_name(
    mechanism: str, seed: object, named: str
) -> None:
    """Before: a seed of None or 12 raised TypeError (no len()), and a str was taken as
    the mechanism."""
    from secagg.dp.distributed import NoiseShareRound

    mech = _mechanism(64, 10) if mechanism == "ddg" else mechanism
    with pytest.raises(ConfigurationError, match=named):
        NoiseShareRound(mech, seed)  # type: ignore[arg-type]


# --- an unreachable budget: the mechanism's own figure, not the central Gaussian's ---

_UNREACHABLE = dict(
    epsilon=1e-3, delta=1e-5, rounds=10**6, dimension=1000, clip=1.0, expected_clients=100
)


def test_an_unreachable_budget_quotes_the_distributed_mechanism_s_own_epsilon() -> None:
    """Before: "epsilon 0.001 is unreachable: even noise_multiplier 10000 spends 0.3407;
    ... or a lower sample_rate", the central Gaussian's figure and advice, where the
    distributed discrete Gaussian (50 honest shares of 100, no sampling credited) spends
    0.5459 at that noise."""
    from secagg.dp.display import shown
    from secagg.dp.distributed import calibrate_noise_multiplier
    from secagg.errors import BudgetUnreachable

    own = DistributedDiscreteGaussian(
        dimension=1000, clip=1.0, noise_multiplier=1e4, expected_clients=100
    ).epsilon(noise_contributors=50, sample_rate=1.0, rounds=10**6, delta=1e-5)
    with pytest.raises(BudgetUnreachable, match="distributed discrete Gaussian") as caught:
        calibrate_noise_multiplier(**_UNREACHABLE, honest_shares=50)
    message = str(caught.value)
    assert f"spends {shown(own, 4, significant=True)} " in message
    assert "sample_rate" not in message and "epsilon 0.001" in message
    assert caught.value.spent == own and caught.value.noise_multiplier == 1e4


def test_an_unreachable_budget_names_the_central_figure_where_the_mechanism_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the mechanism cannot be built at the largest noise, the message says plainly
    that the figure it quotes is the central Gaussian's (a lower bound on this one's)."""
    import secagg.dp.distributed as distributed
    from secagg.errors import BudgetUnreachable

    class Unbuildable:
        def __init__(self, **kwargs: object) -> None:
            raise ConfigurationError("cannot be built here")

    monkeypatch.setattr(distributed, "DistributedDiscreteGaussian", Unbuildable)
    with pytest.raises(BudgetUnreachable, match="even the central Gaussian") as caught:
        distributed.calibrate_noise_multiplier(**_UNREACHABLE, honest_shares=50)
    assert "sample_rate" not in str(caught.value)


def test_a_calibration_whose_grid_ends_short_says_what_its_most_noise_spends() -> None:
    """500 steps of 2 % from ``start`` that never meet the target ended in "no
    distributed noise meets epsilon = 0.01" with no figure: how far off was it? Now
    the epsilon of the most noise tried (through ``shown``), as a BudgetUnreachable."""
    from secagg.dp.display import shown
    from secagg.errors import BudgetUnreachable

    with pytest.raises(BudgetUnreachable) as refused:
        calibrate_noise_multiplier(
            epsilon=0.01,
            delta=1e-5,
            rounds=1,
            dimension=100,
            clip=1.0,
            expected_clients=10,
            honest_shares=10,
            start=1e-3,
        )
    exc = refused.value
    assert exc.epsilon == 0.01 and exc.spent > 0.01
    assert exc.noise_multiplier == pytest.approx(1e-3 * 1.02**499)
    message = str(exc)
    assert message.startswith("no distributed noise meets epsilon = 0.01: ")
    assert f"spends {shown(exc.spent, 4, significant=True)} over 1 round with" in message
