"""Shared by every test folder: the helpers beside this file are importable by name, and
Hypothesis runs without its per-example deadline (200 ms by default) or its "too slow"
health check: both time the machine, not the code, and a busy 2-core CI machine trips
them (a property's examples are checked all the same)."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile(
    "busy-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("busy-machine")
