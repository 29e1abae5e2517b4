"""tests/_schedule.py: the order the suite's files reach the xdist workers, longest first.

Why these checks: the order is only as good as the figures it ranks by and xdist's
keeping it; a file renamed away from its figure, or ``--no-loadscope-reorder`` dropped
from pyproject.toml, would silently put the long files back at the end of a run.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from _schedule import (
    MEASURED_SECONDS,
    SECONDS_PER_INTEGRATION_TEST,
    SECONDS_PER_TEST,
    estimated_seconds,
    longest_files_first,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class _Item:
    """What :func:`longest_files_first` reads of a ``pytest.Item``."""

    nodeid: str
    markers: set[str] = field(default_factory=set)

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


def test_every_measured_file_is_a_test_file_of_the_suite() -> None:
    """A figure under a name no file has any more ranks nothing: the file it measured
    would fall back to the guess from its test count."""
    missing = [path for path in MEASURED_SECONDS if not (ROOT / path).is_file()]
    assert not missing, missing


def test_the_longest_files_go_first_and_each_files_tests_stay_in_order() -> None:
    crash = "tests/runtime/test_crash_points.py"  # two tests, 41 s
    items = [
        *(_Item(f"tests/crypto/test_many_quick.py::test_{i}") for i in range(40)),
        _Item(f"{crash}::test_every_write[central]"),
        _Item("tests/integration/test_new.py::test_a_federation", {"integration"}),
        _Item(f"{crash}::test_every_write[distributed]"),
        _Item("tests/dp/test_one.py::test_alone"),
    ]
    ordered = [item.nodeid for item in longest_files_first(items)]  # type: ignore[arg-type]
    assert ordered[:2] == [
        f"{crash}::test_every_write[central]",
        f"{crash}::test_every_write[distributed]",
    ]
    # 40 quick tests (10 s) before one integration test (3 s) before one quick test
    assert ordered[2:42] == [f"tests/crypto/test_many_quick.py::test_{i}" for i in range(40)]
    assert ordered[42:] == [
        "tests/integration/test_new.py::test_a_federation",
        "tests/dp/test_one.py::test_alone",
    ]


def test_an_unmeasured_file_is_weighed_by_its_tests_and_integration_marks() -> None:
    assert estimated_seconds("tests/x/test_new.py", 10, 0) == 10 * SECONDS_PER_TEST
    assert estimated_seconds("tests/x/test_new.py", 10, 4) == (
        6 * SECONDS_PER_TEST + 4 * SECONDS_PER_INTEGRATION_TEST
    )
    path, seconds = next(iter(MEASURED_SECONDS.items()))
    assert estimated_seconds(path, 1, 0) == seconds


def test_xdist_hands_out_whole_files_in_the_collected_order() -> None:
    """Without ``--no-loadscope-reorder`` xdist re-sorts the files by test count, most
    first, undoing the order; without ``--dist loadfile`` it hands out single tests."""
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    options = shlex.split(pytest_options["ini_options"]["addopts"])
    assert "--no-loadscope-reorder" in options
    assert options[options.index("--dist") + 1] == "loadfile"
