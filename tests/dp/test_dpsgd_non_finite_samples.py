"""DP-SGD: a record whose per-sample gradient is not finite adds zero, not a NaN model.

Before: Opacus clips by ``C / (norm + 1e-6)``; a NaN or infinite per-sample gradient
(a finite record reaches one: float32 features at +-3e38 overflow a linear model) made
the batch's clipped sum NaN, the model NaN, and the branch's update was refused as
"training diverged". Whether a branch failed its round then depended on one record
being sampled, which no epsilon covers. Now that sample's gradient is zeroed before
clipping (:mod:`secagg.dp.keyed_dpsgd`), in the deployed trainer and in a simulation.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from opacus.optimizers import DPOptimizer  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from secagg.dp.dpsgd import DPSGDTrainer  # noqa: E402

#: finite float32 feature values that make a linear model's gradient NaN
_OVERFLOWING = (-3.0e38, 3.0e38)


def _trainer(poisoned: int | None, value: float, replay: bool) -> DPSGDTrainer:
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(64, 4, generator=gen)
    y = torch.randint(0, 2, (64,), generator=gen)
    if poisoned is not None:
        x[poisoned] = value
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.zero_()
    return DPSGDTrainer(
        model, TensorDataset(x, y), batch_size=16, learning_rate=0.1, max_grad_norm=1.0,
        noise_multiplier=1.0, delta=1e-3, replay_seed=b"replay" if replay else None,
    )  # fmt: skip


@settings(max_examples=12, deadline=None)
@given(poisoned=st.integers(0, 63), value=st.sampled_from(_OVERFLOWING), replay=st.booleans())
def test_an_overflowing_record_leaves_the_update_finite(
    poisoned: int, value: float, replay: bool
) -> None:
    """Two epochs sample every record with near certainty; the update stays finite (it
    was refused as 'training diverged' whenever the record was in a batch)."""
    trainer = _trainer(poisoned, value, replay)
    start = trainer.flat_parameters().copy()
    trainer.train(2)
    assert np.all(np.isfinite(trainer.model_update(start)))


def _optimizer(cls: type[DPOptimizer], params: list[nn.Parameter]) -> DPOptimizer:
    sgd = torch.optim.SGD(params, lr=1.0)
    return cls(sgd, noise_multiplier=0.0, max_grad_norm=1.0, expected_batch_size=5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", [0, 1])
def test_a_non_finite_sample_is_zeroed_in_every_parameter(bad: float, where: int) -> None:
    """The clipped sum with the bad sample equals Opacus's clipped sum of the others;
    the sample is zeroed in the parameter where it is finite too (one sample, one
    record: its whole gradient goes)."""
    from secagg.dp.keyed_dpsgd import FiniteSamplesDPOptimizer

    gen = torch.Generator().manual_seed(3)
    samples = [torch.randn(5, 3, generator=gen) * 4, torch.randn(5, 2, 2, generator=gen)]
    params = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2, 2))]
    for p, g in zip(params, samples, strict=True):
        p.grad_sample = g.clone()
    params[where].grad_sample[2].view(-1)[0] = bad
    finite = _optimizer(FiniteSamplesDPOptimizer, params)
    finite.clip_and_accumulate()
    got = [p.summed_grad.clone() for p in params]

    keep = torch.tensor([0, 1, 3, 4])
    reference = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2, 2))]
    for p, g in zip(reference, samples, strict=True):
        p.grad_sample = g[keep].clone()
    plain = _optimizer(DPOptimizer, reference)
    plain.clip_and_accumulate()
    for mine, theirs in zip(got, reference, strict=True):
        assert torch.all(torch.isfinite(mine))
        assert torch.allclose(mine, theirs.summed_grad, rtol=1e-6, atol=1e-7)
