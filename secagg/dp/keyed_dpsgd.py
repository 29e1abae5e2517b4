"""DP-SGD's two random draws, the Gaussian noise and the Poisson batches, from keyed streams.

Why: Opacus draws both from a ``torch.Generator``, Mersenne Twister on CPU, whose state
anyone who sees enough of its outputs can reconstruct and then predict the rest of;
noise an attacker can predict can be subtracted. Its own remedy (``secure_mode``) needs
``torchcsprng``, which has no build for current torch. The project's rule is that keys,
seeds, masks and DP noise come from the OS CSPRNG or a keyed cipher, so a deployed
:class:`~secagg.dp.dpsgd.DPSGDTrainer` draws both from a
:class:`~secagg.crypto.stream.KeyedStream` (AES-CTR under a fresh ``os.urandom`` key):

* :class:`KeyedNoiseDPOptimizer` is Opacus's flat-clipping :class:`DPOptimizer` with one
  method replaced, :meth:`~KeyedNoiseDPOptimizer.add_noise`: the same ``N(0, (z·C)^2)``
  per coordinate, drawn by the project's one Gaussian sampler,
  :func:`secagg.dp.noise.gaussian` (Box-Muller on 53-bit uniforms), in float64 and then
  converted to the gradient's dtype and device, and
  :meth:`~KeyedNoiseDPOptimizer.clip_and_accumulate`: Opacus's per-sample clipping
  with the norm measured in float64 and a margin, so a clipped gradient is never longer
  than the clip (Opacus's float32 one was, by up to 1.1e-6 relative). Scaling, the
  step hook and the empty-batch handling are Opacus's, untouched.
* :class:`KeyedPoissonSampler` is Opacus's ``UniformWithReplacementSampler`` with its
  draw replaced: each item is in a batch independently with probability ``q`` (a
  uniform from the stream below ``q``), empty batches allowed, ``int(1 / q)`` batches
  an epoch as before (the accountant's plan counts them).

Both optimizers the trainer builds, this one and the simulation's (:func:`finite_optimizer`,
which keeps Opacus's seeded torch noise), zero a per-sample gradient that is not finite
before clipping (:func:`zero_non_finite_samples`). Why: Opacus clips by
``C / (norm + 1e-6)``, and a NaN or infinite per-sample gradient (finite records reach
one: a row of float32 features at -3e38 overflows a linear model's logit) made the
batch's summed gradient NaN, the model NaN and the branch's update refused ("training
diverged"), so whether a branch failed its round depended on that one record being
sampled, an outcome no epsilon covers. The zero vector is inside the clip ball: the
sensitivity ``C`` holds for every record, finite or not.

Only the non-distributed, flat-clipping optimizer the trainer builds is supported;
:func:`keyed_optimizer` refuses any other class rather than silently keep its torch
noise. The floating-point caveat of Gaussian noise (:mod:`secagg.dp.dpsgd`) is about
the output's representation, not the generator, and still applies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from opacus.optimizers import DPOptimizer

# Opacus's own bookkeeping of add_noise (private names: pyproject pins opacus==1.6.0)
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed
from opacus.utils.uniform_sampler import UniformWithReplacementSampler

from secagg.crypto.stream import KeyedStream
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError

#: the deployed optimizer's clip factor is ``C / norm`` times this: the float32 product
#: then stays within ``C`` (its rounding is below 2^-24 a coordinate)
_CLIP_MARGIN = 1.0 - 2.0**-20

__all__ = [
    "FiniteSamplesDPOptimizer",
    "KeyedNoiseDPOptimizer",
    "KeyedPoissonSampler",
    "finite_optimizer",
    "keyed_optimizer",
    "zero_non_finite_samples",
]


def zero_non_finite_samples(params: Sequence[torch.Tensor]) -> int:
    """Zero, in place, every sample's gradient (in all ``params``) that is not finite in
    one of them; return how many samples were zeroed.

    ``p.grad_sample`` is one tensor per batch (or Opacus's list of them when batches
    accumulate), its first axis the samples, the same samples in every parameter. In
    place, so the tensors keep Opacus's processed flags."""
    batches: list[list[torch.Tensor]] = []
    for p in params:
        grad_sample = getattr(p, "grad_sample", None)
        if grad_sample is None:
            return 0  # Opacus's own clipping names the missing per-sample gradient
        batches.append(list(grad_sample) if isinstance(grad_sample, list) else [grad_sample])
    zeroed = 0
    for chunk in zip(*batches, strict=True):
        if not chunk or len(chunk[0]) == 0:
            continue
        finite = torch.ones(len(chunk[0]), dtype=torch.bool, device=chunk[0].device)
        for g in chunk:
            finite &= torch.isfinite(g.reshape(len(g), -1)).all(dim=1).to(finite.device)
        if bool(finite.all()):
            continue
        for g in chunk:
            g[~finite.to(g.device)] = 0
        zeroed += int((~finite).sum())
    return zeroed


class FiniteSamplesDPOptimizer(DPOptimizer):
    """Opacus's flat-clipping DP optimizer, a non-finite per-sample gradient zeroed
    before clipping (module docstring): the clipped sum is then finite whatever one
    record is, and a record moves it by at most ``max_grad_norm``."""

    def clip_and_accumulate(self) -> None:
        zero_non_finite_samples(self.params)
        super().clip_and_accumulate()


def finite_optimizer(optimizer: DPOptimizer) -> FiniteSamplesDPOptimizer:
    """The optimizer ``make_private`` returned, rebuilt to zero non-finite per-sample
    gradients; every setting copied, its noise generator (a simulation's seeded one)
    kept, so a run whose gradients are all finite draws exactly what it drew before.
    Anything but a plain :class:`DPOptimizer` is refused, as :func:`keyed_optimizer`."""
    if type(optimizer) is not DPOptimizer:
        raise ConfigurationError(
            f"DP-SGD supports Opacus's flat-clipping DPOptimizer only, "
            f"not {type(optimizer).__name__}"
        )
    return FiniteSamplesDPOptimizer(
        optimizer.original_optimizer,
        noise_multiplier=optimizer.noise_multiplier,
        max_grad_norm=optimizer.max_grad_norm,
        expected_batch_size=optimizer.expected_batch_size,
        loss_reduction=optimizer.loss_reduction,
        generator=optimizer.generator,
        secure_mode=optimizer.secure_mode,
    )


class KeyedNoiseDPOptimizer(FiniteSamplesDPOptimizer):
    """Opacus's flat-clipping DP optimizer, its Gaussian noise drawn from a keyed stream
    (and, as :class:`FiniteSamplesDPOptimizer`, a non-finite per-sample gradient zeroed).

    ``stream`` is this optimizer's alone (it is read strictly forward, so no draw is
    reused); ``generator`` stays None: nothing here reads a torch generator.
    """

    def __init__(self, *args: object, stream: KeyedStream, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._noise_stream = stream

    def clip_and_accumulate(self) -> None:
        """Opacus's per-sample clipping, with the bound held in floating point: every
        sample's clipped gradient has an L2 norm of at most ``max_grad_norm``.

        Why not Opacus's own: it measures each norm in the gradient's float32 and scales
        by ``C / (norm + 1e-6)``, and the clipped vector came out up to 1.1e-6 longer
        than ``C`` at 10^5 parameters (measured, 2026-12-06): the sensitivity the
        accountant charges was exceeded, so the epsilon claimed was that of slightly more
        noise than was added. Here the norm is measured in float64 and the factor is
        ``C / norm`` shrunk by :data:`_CLIP_MARGIN` (2^-20, far above float32's rounding of
        the product, 2^-24 a coordinate), as :func:`secagg.dp.clipping.clip_l2` does for
        client updates. The simulation's optimizer keeps Opacus's clipping: its figures
        must replay, and its noise is seeded from a public seed anyway."""
        zero_non_finite_samples(self.params)
        samples = self.grad_samples
        if len(samples[0]) == 0:  # an empty batch: a zero sum, as Opacus makes it
            factor = torch.zeros((0,), dtype=torch.float64, device=samples[0].device)
        else:
            squared = sum(
                g.reshape(len(g), -1).to(torch.float64).pow(2).sum(dim=1).to(samples[0].device)
                for g in samples
            )
            norm = squared.sqrt().clamp(min=torch.finfo(torch.float64).tiny)
            factor = (self.max_grad_norm * _CLIP_MARGIN / norm).clamp(max=1.0)
        for p in self.params:
            _check_processed_flag(p.grad_sample)
            grad_sample = self._get_flat_grad_sample(p).to(p.dtype)
            scale = factor.to(device=grad_sample.device, dtype=p.dtype)
            grad = torch.einsum("i,i...", scale, grad_sample)
            if p.summed_grad is not None:
                p.summed_grad += grad
            else:
                p.summed_grad = grad
            _mark_as_processed(p.grad_sample)

    def add_noise(self) -> None:
        """Opacus's ``add_noise``, with the noise from the stream: ``p.grad`` becomes the
        clipped sum plus ``N(0, (noise_multiplier · max_grad_norm)^2)`` per coordinate.

        One draw per step for all parameters (the same distribution as one per
        parameter, with one Python round trip instead of one per tensor)."""
        params = list(self.params)
        # all flags checked before any grad is written: a refused step changes nothing
        for p in params:
            _check_processed_flag(p.summed_grad)
        total = sum(p.summed_grad.numel() for p in params)
        noise = gaussian(self.noise_multiplier * self.max_grad_norm, total, self._noise_stream)
        offset = 0
        for p in params:
            reference = p.summed_grad
            size = reference.numel()
            drawn = torch.from_numpy(noise[offset : offset + size]).view(reference.shape)
            offset += size
            noised = reference + drawn.to(dtype=reference.dtype, device=reference.device)
            p.grad = noised.view_as(p)
            _mark_as_processed(p.summed_grad)


def keyed_optimizer(optimizer: DPOptimizer, stream: KeyedStream) -> KeyedNoiseDPOptimizer:
    """The optimizer ``make_private`` returned, rebuilt to draw its noise from ``stream``.

    Built through the public constructor, with every setting copied, around the same
    wrapped SGD; the caller attaches the accountant's step hook to the result (the
    old object, and its hook, are dropped). Anything but a plain :class:`DPOptimizer`
    (per-layer, adaptive, distributed or ghost clipping, whose noise differs) is
    refused: it would keep drawing from torch's generator."""
    if type(optimizer) is not DPOptimizer:
        raise ConfigurationError(
            f"keyed DP-SGD noise supports Opacus's flat-clipping DPOptimizer only, "
            f"not {type(optimizer).__name__}"
        )
    if optimizer.secure_mode or optimizer.generator is not None:
        raise ConfigurationError("keyed DP-SGD noise replaces a torch generator: pass none")
    return KeyedNoiseDPOptimizer(
        optimizer.original_optimizer,
        noise_multiplier=optimizer.noise_multiplier,
        max_grad_norm=optimizer.max_grad_norm,
        expected_batch_size=optimizer.expected_batch_size,
        loss_reduction=optimizer.loss_reduction,
        generator=None,
        secure_mode=False,
        stream=stream,
    )


class KeyedPoissonSampler(UniformWithReplacementSampler):
    """Poisson batches of item indices: each item in each batch independently with
    probability ``sample_rate``, from the stream's 53-bit uniforms (``u < q``, as
    Opacus's ``torch.rand(n) < q``). ``int(1 / q)`` batches an epoch unless ``steps``."""

    def __init__(
        self,
        *,
        num_samples: int,
        sample_rate: float,
        stream: KeyedStream,
        steps: int | None = None,
    ) -> None:
        super().__init__(num_samples=num_samples, sample_rate=sample_rate, steps=steps)
        self._stream = stream

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.steps):
            chosen = self._stream.uniform(self.num_samples) < self.sample_rate
            yield np.flatnonzero(chosen).tolist()
