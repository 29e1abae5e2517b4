"""The simulator's network: the in-process transport plus byte counts and scheduled dropouts.

The code lives in :mod:`secagg.runtime.simnet` (the runtime's Ray engine plays the
same dropout schedule, and the runtime may not import the apps); the names are
re-exported here, where ``secagg simulate`` and its tests have always found them.
"""

from __future__ import annotations

from secagg.runtime.simnet import (
    MASKING_PHASES,
    SINGLE_PHASE,
    DropoutEvent,
    DropoutSchedule,
    SimulatedNetwork,
)

__all__ = ["MASKING_PHASES", "SINGLE_PHASE", "DropoutEvent", "DropoutSchedule", "SimulatedNetwork"]
