"""Slice-parallel unmasking on Ray workers: each removes the masks of one coordinate range.

Theory of operation
-------------------
At the close of a masking round the server adds ``sum(PRG(s))`` over the revealed
self-mask seeds and the dropped parties' pair seeds into the running masked sum:
hundreds to thousands of AES-CTR keystreams of the model's length. The PRG starts
at any counter (:mod:`secagg.crypto.prg`), so the coordinates split into independent
ranges: :class:`RayUnmasker` cuts the vector into one range per worker
(:func:`~secagg.crypto.prg.slice_bounds`, whole chunks each), ships the seeds once
(one object in Ray's store) with each range's start and length, and each worker
returns ``sum(PRG(add)) - sum(PRG(subtract))`` over its range only
(:func:`~secagg.crypto.prg.mask_slice`). A worker never holds the vector nor the
masked inputs: its memory is O(d / workers) plus one AES context per seed. The
driver adds the returned slices into its accumulator; addition modulo 2^bits
commutes, so the sum is the same word for word as the single-threaded one.

A vector of one chunk or less (d <= 65,536 32-bit words) has no whole-chunk ranges
to hand out, and there the cost is per mask (an AES context each), not per
coordinate: the *masks* are then dealt out instead, each worker expanding its
share of them over the whole short vector (memory O(d), which is small there).

Trust. The seeds are the round's unmasking secrets: whoever holds them and a
party's masked input can remove that party's self-mask. They go only to the
server's own Ray workers, so the cluster must be the server's trust domain (its own
machines), exactly as its threads are; never a shared or third-party cluster.

Where they rest. The seeds are one object in Ray's shared-memory store for the length
of a call, never logged, and not in the state API (which lists objects by id and
size, tasks by name). But Ray spills objects to the node's disk when its store is
full (``/tmp/ray/session_*/ray_spilled_objects_*``), and an object referenced but not
in use by a running task can go: a store of 80 MB filled by 160 MB of other objects
spilled a held seeds object there (review, 2026-12-05); the file is deleted when the
object is freed, not wiped. Here the store holds the call's own results (the model's
size in all) beside the seeds, so this takes a model near the store's size (30 % of
memory by default) or a store shared with other work. A server that must keep the
seeds off disk gives its Ray nodes a store well above the model's size, for its own
work only, and points Ray's spilling (``object_spilling_config``) at memory-backed
storage or turns it off (``automatic_object_spilling_enabled``).

Stuck workers. The driver waits for all the slices at most ``timeout`` seconds
(:data:`DEFAULT_SLICE_TIMEOUT`, the default ``deadlines.round_seconds``: the unmasking
is part of a round, and no round outlasts that); a slice still running then is a
:class:`SliceTimeout` naming its range and task, its task is cancelled (its worker
ended), and ``acc`` is left as it was: the slices are added only once all have
arrived. The server turns that into an aborted round (fail closed, never a partial
sum). Before, the wait had no bound: a stuck (not dead) worker held the server past
every deadline (review, 2026-12-05).

Use it by passing an instance as ``unmask=`` to
:class:`~secagg.protocol.server.Server` (or through the masking backend's server).
Each call records what its workers measured (:attr:`RayUnmasker.last`): seconds and
peak resident memory per worker, for ``secagg bench scale``.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from secagg.crypto.prg import mask_slice, slice_bounds
from secagg.errors import ConfigurationError, SecAggError
from secagg.runtime.ray_engine import require_ray

#: how long the driver waits for all the slices of one call by default: the default
#: ``deadlines.round_seconds`` (600 s), the longest a round may take
DEFAULT_SLICE_TIMEOUT: Final = 600.0


class SliceTimeout(SecAggError, TimeoutError):
    """A Ray worker's slice did not arrive within the unmasker's ``timeout``: the masks
    are not removed (the accumulator is untouched), and the server aborts the round."""


@dataclass(frozen=True)
class SliceReport:
    """What one worker measured for its range: where it ran, how long, how much memory."""

    start: int
    stop: int
    masks: int  # how many of the round's masks this worker expanded over its range
    seconds: float  # wall time of the expansion inside the worker
    cpu_seconds: float
    peak_rss_bytes: int  # the worker process's peak resident set size so far
    pid: int


def _peak_rss_bytes() -> int:
    """This process's peak resident set size (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _slice_of_masks(
    start: int, stop: int, dtype: str, seeds: tuple[Sequence[bytes], Sequence[bytes]]
) -> tuple[np.ndarray, SliceReport]:
    """The task a worker runs: the masks' sum over ``start .. stop`` and its measurements."""
    import os

    began, cpu = time.perf_counter(), time.process_time()
    add, subtract = seeds
    out = mask_slice(stop - start, np.dtype(dtype), add, subtract, offset=start)
    report = SliceReport(
        start,
        stop,
        len(add) + len(subtract),
        time.perf_counter() - began,
        time.process_time() - cpu,
        _peak_rss_bytes(),
        os.getpid(),
    )
    return out, report


class RayUnmasker:
    """A :data:`~secagg.crypto.prg.MaskRemover` that runs one coordinate slice per Ray
    task, at most ``workers`` of them (each task asks Ray for one CPU), waiting for them
    at most ``timeout`` seconds per call (see "Stuck workers" above).

    Ray must be initialised by the caller (e.g. with
    :func:`~secagg.runtime.ray_engine.ray_session`): the unmasker joins whatever
    instance or cluster the driver is connected to."""

    def __init__(self, workers: int, *, timeout: float = DEFAULT_SLICE_TIMEOUT) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigurationError("workers must be a positive integer")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not (0 < timeout and math.isfinite(timeout))
        ):
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, not {timeout!r}"
            )
        self.workers = workers
        self.timeout = float(timeout)
        self.last: list[SliceReport] = []
        self._ray = require_ray()
        self._task: Any = self._ray.remote(num_cpus=1)(_slice_of_masks)

    def __call__(
        self, acc: np.ndarray, add: Sequence[bytes], subtract: Sequence[bytes]
    ) -> np.ndarray:
        """Add ``sum(PRG(add)) - sum(PRG(subtract))`` into ``acc`` (in place), by slices."""
        ray = self._ray
        if not ray.is_initialized():
            raise ConfigurationError("RayUnmasker needs Ray initialised (ray_session)")
        bounds = slice_bounds(len(acc), acc.itemsize, self.workers)
        signed = [(bytes(s), True) for s in add] + [(bytes(s), False) for s in subtract]
        if not bounds or not signed:
            self.last = []
            return acc
        if len(bounds) > 1 or self.workers == 1:
            # by coordinates: every worker expands every mask over its own range
            seeds = ray.put((tuple(bytes(s) for s in add), tuple(bytes(s) for s in subtract)))
            jobs = [(a, b, seeds) for a, b in bounds]
        else:
            # a vector within one chunk cannot be cut (slices are whole chunks): split
            # the masks instead; each worker expands its share over the whole (short)
            # vector, so the per-mask cost (an AES context each) is shared out too
            groups = [signed[i :: self.workers] for i in range(min(self.workers, len(signed)))]
            jobs = [
                (
                    0,
                    len(acc),
                    ray.put(
                        (
                            tuple(s for s, positive in group if positive),
                            tuple(s for s, positive in group if not positive),
                        )
                    ),
                )
                for group in groups
            ]
        refs = [self._task.remote(a, b, acc.dtype.str, seeds) for a, b, seeds in jobs]
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=self.timeout)
        if pending:
            late = [(job, ref) for job, ref in zip(jobs, refs, strict=True) if ref in pending]
            for _, ref in late:
                ray.cancel(ref, force=True)  # a stuck worker is ended, not left holding a CPU
            (a, b, _), ref = late[0]
            more = f" (and {len(late) - 1} more)" if len(late) > 1 else ""
            raise SliceTimeout(
                f"the Ray worker of slice {a}..{b} (task {ref.task_id().hex()}){more} sent "
                f"nothing within {self.timeout:g} s; its task is cancelled and the masks "
                "are not removed"
            )
        parts = ray.get(refs)  # all there: returns at once
        for (a, b, _), (part, _) in zip(jobs, parts, strict=True):
            if part.dtype != acc.dtype or len(part) != b - a:
                raise ConfigurationError(f"a worker returned a wrong slice for {a}..{b}")
        # added only once every slice arrived and checked: a failure leaves acc as it was
        for (a, b, _), (part, _) in zip(jobs, parts, strict=True):
            np.add(acc[a:b], part, out=acc[a:b])
        self.last = [report for _, report in parts]
        return acc
