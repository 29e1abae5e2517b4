"""A simulation that trains no record-level DP-SGD does not import Opacus.

Every ``secagg simulate`` imported :mod:`secagg.dp.dpsgd` (and so Opacus, which pulls in
torch's distributed and symbolic packages: 1.7 s of ``-X importtime`` here, 2-6 s a
process on a loaded machine) even with ``--mechanism off`` or a client-level mechanism:
the round's plan, checked before training, built the starting model through
``branch_training.starting_model``, whose flat-vector helpers lived in ``dpsgd``
(test profiling of 2026-12-06). They need torch only; they now live in
:mod:`secagg.dp.parameter_vector`.

A fresh interpreter, because the test process has imported Opacus long before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: the plan's checks of a small ``--mechanism off`` run, then the starting model's
#: vector out, in, and through the runtime's training hook (what the federation's
#: branches and the final evaluation do), then the Opacus modules loaded
_OFF_PATH = """
import sys
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.runner import check_seed_before_training
from secagg.apps.simulation.branch_training import (
    load_trainable, starting_model, trainable_vector,
)
from secagg.dp.parameter_vector import flat_parameters
from secagg.runtime.hooks import torch_hook

config = SimulationConfig(
    mechanism="off", branches=2, rounds=1, train_rows=600, test_rows_per_branch=200
)
check_seed_before_training(config)
model = starting_model(config, 8, None)
load_trainable(model, trainable_vector(model))
torch_hook(model, lambda trained: None)(flat_parameters(model))
print(sorted(name for name in sys.modules if name.split(".")[0] == "opacus"))
"""


def test_a_run_without_dpsgd_plans_and_moves_its_model_without_opacus() -> None:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", _OFF_PATH],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
