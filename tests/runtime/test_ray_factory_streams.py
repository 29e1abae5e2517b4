"""A Ray client factory carries seeds, never a live keyed stream.

Why: the Ray engine pickles each host's client factories into that host
(``RayHub.start``: one actor argument per host). A factory that held a
:class:`~secagg.crypto.stream.KeyedStream` arrived in every host as a twin of it, so
the clients of two hosts drew the same words: the same noise in two branches' updates,
where the in-process engine (one stream, read forward) gave them different noise. Now
the pickling is refused (:class:`~secagg.errors.StreamCopyRefused`), and the engine's
own recipes (:class:`~secagg.runtime.ray_engine.HookClient`) carry only a seed, from
which each client derives its own streams in its host, by its name and round.

Standard ``pickle`` stands for Ray's serializer here: Ray's cloudpickle pickles an
instance through its ``__reduce_ex__`` as ``pickle`` does (no Ray started: cheap).
"""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.dp.noise import gaussian
from secagg.errors import StreamCopyRefused
from secagg.runtime.launch import demo_hook
from secagg.runtime.ray_engine import HookClient, hook_clients

D = 8


def _noisy_hook(stream: KeyedStream) -> object:
    """A training hook that noises its update from ``stream`` (a caller's own DP hook)."""

    def hook(model: np.ndarray) -> np.ndarray:
        return gaussian(1.0, model.size, stream)

    return hook


def _hosts(groups: list[list[tuple[str, HookClient]]]) -> list[list[tuple[str, HookClient]]]:
    """Each host's group as the host receives it: pickled and rebuilt, one per host."""
    return [pickle.loads(pickle.dumps(group)) for group in groups]


def test_a_factory_holding_a_stream_is_refused_not_twinned_across_hosts() -> None:
    """Before: two hosts each rebuilt the shared stream, and their first clients' hooks
    returned the same noise array (equal element for element)."""
    shared = KeyedStream()
    factories = hook_clients(
        {name: functools.partial(_noisy_hook, shared) for name in ("a", "b")}, dimension=D
    )
    groups = [[("a", factories["a"])], [("b", factories["b"])]]  # round-robin on 2 hosts
    with pytest.raises(StreamCopyRefused, match=r"fork\("):
        _hosts(groups)
    # in one process the two clients share the stream and draw two noises
    a, b = (factories[n].hook()(np.zeros(D)) for n in ("a", "b"))
    assert not np.array_equal(a, b)


def test_the_engines_recipes_carry_a_seed_and_pickle() -> None:
    """What the engine and ``secagg bench scale`` send (a seed, a partial of a module
    function) still crosses to a host; the streams are derived there, per client."""
    factories = hook_clients(
        {name: functools.partial(demo_hook, name, D) for name in ("a", "b")},
        dimension=D,
        replay_seed=bytes(16),
    )
    rebuilt = [group[0][1] for group in _hosts([[(n, f)] for n, f in factories.items()])]
    for name, host_copy in zip(("a", "b"), rebuilt, strict=True):
        assert host_copy.replay_seed == bytes(16) and host_copy.dimension == D
        assert host_copy.hook.func is demo_hook and host_copy.hook.args == (name, D)
