"""The deployed DP-SGD optimizer never lets a clipped per-sample gradient exceed the clip.

Before: Opacus's clipping measures each norm in float32 and scales by
``C / (norm + 1e-6)``; the clipped vector came out up to 1.1e-6 longer than ``C`` at 10^5
parameters, so every step's sensitivity was above the ``C`` the accountant charges and
the epsilon claimed was that of slightly more noise than was added.
:class:`~secagg.dp.keyed_dpsgd.KeyedNoiseDPOptimizer` now measures in float64 and
scales with a margin (as :func:`secagg.dp.clipping.clip_l2` does for client updates).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from secagg.crypto.stream import KeyedStream  # noqa: E402
from secagg.dp.keyed_dpsgd import KeyedNoiseDPOptimizer  # noqa: E402


def _clipped(vectors: torch.Tensor, clip: float) -> np.ndarray:
    """Each row of ``vectors`` (one sample each) through the optimizer's clipping alone,
    as float64: one sample a batch, so the summed gradient is that sample's."""
    out = []
    for row in vectors:
        p = nn.Parameter(torch.zeros_like(row))
        optimizer = KeyedNoiseDPOptimizer(
            torch.optim.SGD([p], lr=1.0), noise_multiplier=1.0, max_grad_norm=clip,
            expected_batch_size=1, stream=KeyedStream(),
        )  # fmt: skip
        p.grad_sample = row.unsqueeze(0).clone()
        optimizer.clip_and_accumulate()
        out.append(p.summed_grad.to(torch.float64).numpy())
    return np.array(out)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    dimension=st.sampled_from([10, 1_000, 100_000]),
    scale=st.sampled_from([1e-3, 1.0, 1e3, 1e6]),
    clip=st.sampled_from([0.1, 1.0, 7.5]),
)
def test_no_clipped_sample_is_longer_than_the_clip(
    seed: int, dimension: int, scale: float, clip: float
) -> None:
    gen = torch.Generator().manual_seed(seed)
    vectors = torch.randn(8, dimension, generator=gen) * scale
    clipped = _clipped(vectors.float(), clip)
    norms = np.sqrt(np.sum(clipped * clipped, axis=1))
    assert np.all(norms <= clip), (norms.max() / clip - 1, dimension, scale)
    # and clipping is still clipping: a long vector comes out at the clip, within 1e-5
    original = np.linalg.norm(vectors.float().double().numpy(), axis=1)
    long = original > clip
    assert np.all(norms[long] >= clip * (1 - 1e-5))
    short = original < clip * (1 - 2**-19)  # well inside the clip: untouched
    assert np.allclose(clipped[short], vectors.float().double().numpy()[short], rtol=0, atol=0)
