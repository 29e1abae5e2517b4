"""A deployed DP-SGD trainer draws its noise and its Poisson batches from keyed streams.

Before: without ``replay_seed`` Opacus drew the Gaussian noise with ``torch.normal`` and
the batches with ``torch.rand`` from torch generators (Mersenne Twister, whose state a
few outputs reveal) seeded with 64 bits of ``os.urandom``. Now both come from AES-CTR
keyed streams (:mod:`secagg.dp.keyed_dpsgd`): the same distributions, N(0, (z·C)^2)
per coordinate and each item in a batch with probability q, and the same ``int(1 / q)``
batches an epoch. A simulation (``replay_seed``) keeps the torch generators, bit for bit.

The statistical bounds are 5 standard errors of the estimate at the sample size drawn
(a false alarm about once in 1.7 million runs), not tuned numbers.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

import opacus.optimizers.optimizer as opacus_optimizer  # noqa: E402
from opacus.optimizers import DPOptimizer, DPPerLayerOptimizer  # noqa: E402
from opacus.utils.uniform_sampler import UniformWithReplacementSampler  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from secagg.dp.dpsgd import DPSGDTrainer, flat_parameters, load_flat_parameters  # noqa: E402
from secagg.dp.noise import gaussian  # noqa: E402
from secagg.errors import ConfigurationError  # noqa: E402

SIGMAS = 5.0  # every statistical bound below is this many standard errors


@pytest.fixture
def torch_draws(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every draw from a torch generator Opacus makes for noise or batches, by name:
    ``torch.normal``/``torch.rand`` with a generator, and Opacus's noise function."""
    seen: list[str] = []
    real_normal, real_rand, real_noise = torch.normal, torch.rand, opacus_optimizer._generate_noise

    def normal(*args: object, **kwargs: object) -> torch.Tensor:
        if kwargs.get("generator") is not None:
            seen.append("torch.normal")
        return real_normal(*args, **kwargs)  # type: ignore[call-overload]

    def rand(*args: object, **kwargs: object) -> torch.Tensor:
        if kwargs.get("generator") is not None:
            seen.append("torch.rand")
        return real_rand(*args, **kwargs)  # type: ignore[call-overload]

    def noise(*args: object, **kwargs: object) -> torch.Tensor:
        seen.append("opacus._generate_noise")
        return real_noise(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "normal", normal)
    monkeypatch.setattr(torch, "rand", rand)
    monkeypatch.setattr(opacus_optimizer, "_generate_noise", noise)
    yield seen


def _zero_gradient_trainer(
    features: int, records: int = 8, *, z: float = 1.3, clip: float = 0.7, **extra: object
) -> DPSGDTrainer:
    """A trainer whose per-record gradients are exactly zero (zero inputs, no bias), with
    q = 1 (one step an epoch), loss summed and learning rate 1: one step moves the
    parameters by minus the noise, N(0, (z·C)^2) per coordinate, and nothing else."""
    x = torch.zeros(records, features)
    y = torch.arange(records) % 2
    model = nn.Linear(features, 2, bias=False)
    load_flat_parameters(model, np.zeros(2 * features, dtype=np.float32))
    return DPSGDTrainer(
        model, TensorDataset(x, y), batch_size=records, learning_rate=1.0, max_grad_norm=clip,
        noise_multiplier=z, loss_fn=nn.CrossEntropyLoss(reduction="sum"), accountant="rdp",
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def _step_noise(trainer: DPSGDTrainer) -> np.ndarray:
    """The noise of one DP-SGD step: minus the parameters' change (float64)."""
    before = flat_parameters(trainer.model).astype(np.float64)
    trainer.train(1)
    return before - flat_parameters(trainer.model).astype(np.float64)


def test_no_torch_generator_draws_the_noise_or_the_batches(torch_draws: list[str]) -> None:
    x = torch.linspace(-1, 1, 64 * 4).reshape(64, 4)
    trainer = DPSGDTrainer(
        nn.Linear(4, 2), TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8,
        learning_rate=0.1, max_grad_norm=1.0, noise_multiplier=1.0, accountant="rdp",
    )  # fmt: skip
    trainer.train(2)
    assert trainer.steps == 16
    assert torch_draws == []
    assert trainer._optimizer.generator is None  # nothing for Opacus's torch.normal to use


def test_the_noise_has_std_z_times_clip_and_mean_zero(torch_draws: list[str]) -> None:
    z, clip, features, steps = 1.3, 0.7, 500, 20
    trainer = _zero_gradient_trainer(features, z=z, clip=clip)
    noise = np.concatenate([_step_noise(trainer) for _ in range(steps)])
    count, std = noise.size, z * clip
    assert count == 2 * features * steps
    # the sample std of N normals has standard error std / sqrt(2 (N - 1))
    assert abs(noise.std(ddof=1) - std) <= SIGMAS * std / math.sqrt(2 * (count - 1))
    assert abs(noise.mean()) <= SIGMAS * std / math.sqrt(count)
    # tails as a Gaussian's: the share beyond 2 std is 4.55 %, a binomial proportion
    beyond, p = float(np.mean(np.abs(noise) > 2 * std)), math.erfc(2 / math.sqrt(2))
    assert abs(beyond - p) <= SIGMAS * math.sqrt(p * (1 - p) / count)
    assert torch_draws == []


def test_two_trainers_draw_different_noise_and_never_show_a_key(
    torch_draws: list[str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = _zero_gradient_trainer(50), _zero_gradient_trainer(50)
    a, b = _step_noise(first), _step_noise(second)
    assert not np.allclose(a, b) and not np.allclose(a, -b)
    first.train(1, progress=True)
    streams = [
        stream
        for t in (first, second)
        for stream in (t._optimizer._noise_stream, t._loader.batch_sampler._stream)
    ]
    shown = "\n".join(
        [caplog.text, *capsys.readouterr(), *map(repr, streams)]
        + [repr(t) + repr(t._optimizer) + repr(t._loader) + str(vars(t)) for t in (first, second)]
    )
    keys = [stream._key for stream in streams]
    assert len(set(keys)) == 4  # a fresh key per stream: noise and batches, per trainer
    for key in keys:
        assert len(key) == 16
        for form in (key.hex(), key.hex().upper(), repr(key), str(list(key))):
            assert form not in shown
    assert torch_draws == []


def test_batches_are_binomial_and_an_epoch_keeps_its_batch_count(torch_draws: list[str]) -> None:
    n, batch_size, epochs = 400, 20, 100
    x = torch.linspace(-1, 1, n * 3).reshape(n, 3)
    trainer = DPSGDTrainer(
        nn.Linear(3, 2), TensorDataset(x, (x[:, 0] > 0).long()), batch_size=batch_size,
        learning_rate=0.1, max_grad_norm=1.0, noise_multiplier=1.0, accountant="rdp",
    )  # fmt: skip
    q = trainer.sample_rate
    assert q == 1 / 20 and trainer.steps_per_epoch == int(1 / q) == 20
    sizes = []
    counts = np.zeros(n)
    for _ in range(epochs):
        batches = list(trainer._loader)
        assert len(batches) == trainer.steps_per_epoch
        for _inputs, target in batches:
            sizes.append(len(target))
    for indices in trainer._loader.batch_sampler:  # one more epoch of raw indices
        assert indices == sorted(set(indices)) and all(0 <= i < n for i in indices)
        counts[indices] += 1
    sizes_array = np.asarray(sizes, dtype=np.float64)
    m, mean, var = sizes_array.size, n * q, n * q * (1 - q)
    assert abs(sizes_array.mean() - mean) <= SIGMAS * math.sqrt(var / m)
    # the sample variance's standard error, with the binomial's excess kurtosis
    kurtosis = (1 - 6 * q * (1 - q)) / var
    var_error = var * math.sqrt(2 / (m - 1) + kurtosis / m)
    assert abs(sizes_array.var(ddof=1) - var) <= SIGMAS * var_error
    assert sizes_array.min() >= 0 and counts.sum() > 0
    assert torch_draws == []


def test_the_awkward_batch_count_is_kept() -> None:
    """93 batches of 10: Opacus's int(1 / q) is 92 in floating point, the count the
    accountant's plan (and the trainer's assertion) was built on; it must not change."""
    x = torch.linspace(-1, 1, 930 * 2).reshape(930, 2)
    trainer = DPSGDTrainer(
        nn.Linear(2, 2), TensorDataset(x, (x[:, 0] > 0).long()), batch_size=10,
        learning_rate=0.1, max_grad_norm=1.0, noise_multiplier=1.0, accountant="rdp",
    )  # fmt: skip
    assert trainer.sample_rate == 1 / 93 and trainer.steps_per_epoch == 92
    assert sum(1 for _ in trainer._loader) == 92
    trainer.train(1)
    assert trainer.steps == 92 and trainer.history == ((1.0, 1 / 93, 92),)


#: the parameters after 12 steps of the replay run below, computed on the code before
#: the keyed streams (commit 540549c): a simulation's figures must not move. One digest
#: per host kind, because torch's CPU kernels round differently on different CPUs (the
#: same code gives other last bits on the AMD EPYC host with AVX-512 than on the Intel
#: Xeon host; docs/results.md, "The host matters"): each was computed by commit 540549c
#: itself on its host (the EPYC one on 2026-12-07, when this test first ran there and
#: failed against the Xeon digest although nothing had changed)
REPLAY_DIGESTS = {
    "cac10a736489b02c38c2ae217a705dc967c45dcfdb1f72cacab0d0e91c39d5b5": "Intel Xeon",
    "2b924223a9dfa29ce128170db22996c6000ba67a6b3b29e3a43530f2960cc67e": "AMD EPYC, AVX-512",
}


def test_the_replay_path_is_unchanged_bit_for_bit() -> None:
    gen = torch.Generator().manual_seed(130)
    x = torch.randn(96, 4, generator=gen)
    y = (x.sum(dim=1) > 0).long()
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    load_flat_parameters(model, (np.arange(44, dtype=np.float32) % 7 - 3) / 10)
    trainer = DPSGDTrainer(
        model, TensorDataset(x, y), batch_size=16, learning_rate=0.3, max_grad_norm=1.0,
        noise_multiplier=0.8, replay_seed=b"pinned-replay",
    )  # fmt: skip
    # a replay keeps Opacus's own noise and batches: its seed is public, no generator
    # hides it (the optimizer only zeroes non-finite per-sample gradients, which this
    # run has none of: the digest below is the one from before that, too)
    from secagg.dp.keyed_dpsgd import FiniteSamplesDPOptimizer

    assert type(trainer._optimizer) is FiniteSamplesDPOptimizer
    assert trainer._optimizer.generator is not None
    assert type(trainer._loader.batch_sampler) is UniformWithReplacementSampler
    trainer.train(2)
    assert trainer.steps == 12
    digest = hashlib.sha256(flat_parameters(trainer.model).tobytes()).hexdigest()
    assert digest in REPLAY_DIGESTS, (
        f"the replay path moved: {digest} is none of commit 540549c's digests on the known "
        "hosts (on a new kind of host, compute 540549c's own digest there and add it)"
    )


def test_other_opacus_optimizers_and_torch_generators_are_refused() -> None:
    from secagg.crypto.stream import KeyedStream
    from secagg.dp.keyed_dpsgd import keyed_optimizer

    layer = nn.Linear(3, 2)
    sgd = torch.optim.SGD(layer.parameters(), lr=0.1)
    per_layer = DPPerLayerOptimizer(
        sgd, noise_multiplier=1.0, max_grad_norm=[1.0, 1.0], expected_batch_size=4
    )
    with pytest.raises(ConfigurationError, match="DPPerLayerOptimizer"):
        keyed_optimizer(per_layer, KeyedStream())
    seeded = DPOptimizer(
        sgd, noise_multiplier=1.0, max_grad_norm=1.0, expected_batch_size=4,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match="torch generator"):
        keyed_optimizer(seeded, KeyedStream())
    keyed = keyed_optimizer(
        DPOptimizer(sgd, noise_multiplier=1.5, max_grad_norm=0.5, expected_batch_size=4),
        KeyedStream(),
    )
    assert (keyed.noise_multiplier, keyed.max_grad_norm, keyed.expected_batch_size) == (
        1.5, 0.5, 4,
    )  # fmt: skip
    assert keyed.loss_reduction == "mean" and keyed.original_optimizer is sgd


def test_the_noise_takes_each_gradients_shape_and_dtype() -> None:
    """Drawn in float64, then converted per parameter: a float64 parameter keeps the
    draw's 53 bits, a float32 one gets it rounded, and every shape is the parameter's."""
    from secagg.crypto.stream import KeyedStream
    from secagg.dp.keyed_dpsgd import KeyedNoiseDPOptimizer

    wide = nn.Parameter(torch.zeros(3, 4, dtype=torch.float64))
    narrow = nn.Parameter(torch.zeros(5))
    key = bytes(range(16))
    optimizer = KeyedNoiseDPOptimizer(
        torch.optim.SGD([wide, narrow], lr=1.0), noise_multiplier=2.0, max_grad_norm=0.5,
        expected_batch_size=4, stream=KeyedStream(key),
    )  # fmt: skip
    for p in (wide, narrow):
        p.summed_grad = torch.zeros(p.numel(), dtype=p.dtype)
    optimizer.add_noise()
    expected = gaussian(1.0, 17, KeyedStream(key))  # one draw for both, in parameter order
    assert wide.grad.dtype == torch.float64 and wide.grad.shape == (3, 4)
    assert narrow.grad.dtype == torch.float32 and narrow.grad.shape == (5,)
    assert np.array_equal(wide.grad.numpy().ravel(), expected[:12])
    assert np.array_equal(narrow.grad.numpy(), expected[12:].astype(np.float32))
