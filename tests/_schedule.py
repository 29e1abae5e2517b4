"""The order in which the suite's files reach the xdist workers: the longest first
(used by tests/conftest.py, checked by tests/test_schedule_order.py).

Why: ``--dist loadfile`` hands out whole files, and pytest-xdist queued them by test
count, most first (its ``--loadscope-reorder``, on by default), so the files of one to
four tests came last, and among them the longest of the suite: the crash-point sweep
(two tests, 41 s), the Ray simulation (32 s and its start), the gRPC federations, the fault
injection. A worker that took one of them near the end ran it alone while the other
worker, the queue empty, sat idle. pyproject.toml now passes ``--no-loadscope-reorder``,
so xdist keeps the order the workers collected in, and :func:`longest_files_first`
makes that order longest first (the classic "longest processing time first" rule:
what is left at the end is short, so the two workers finish close together).

The figures below only rank files, and a file missing from them still finds its place:
:func:`estimated_seconds` guesses from its test count and its ``integration`` marks.
A figure that has grown stale costs some balance at the end of a run, never a test.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

#: Seconds each file takes on one worker of the idle 2-core CI machine, roughly: from
#: a fresh-clone CI run's ``--durations`` (2026-12-06: the file's slowest test, plus
#: its others) or, for the other files of one to four tests, measured in one process
#: (``-n 0``, 2026-12-06, beside other jobs at a load of 9-13) and divided by 3, a
#: middle value of that load's slowdowns (from 1.0 for a test that waits on timers to
#: about 10 for Ray's start; CPU-bound tests 2-5). Files of 5 s and more only, and
#: files far below the guess from their tests (:func:`estimated_seconds`).
#:
#: tests/integration and tests/protocol re-measured in one process (``-n 0
#: --durations=0``, 2026-12-06 07:43-07:58 UTC, 597 s, at a load of 6-7): a figure (for
#: a file not listed, its guess) is raised when that time divided by 1.5 (the median
#: ratio of those times to the figures already here) is more than twice it, and lowered
#: only when the time itself (load only slows a test: an upper bound) is under half of
#: it, because for longest-first a figure too low costs balance at the end of a run and
#: a figure too high hardly any.
MEASURED_SECONDS: dict[str, float] = {
    "tests/apps/simulation/test_ray_simulation.py": 45,
    "tests/runtime/test_crash_points.py": 41,
    # 40 kept (2026-12-07, -n 0 --durations=0: 57 s at a load of 12, 73 s at 14; by the
    # re-measure rule above neither raises nor lowers it)
    "tests/protocol/test_properties.py": 40,
    "tests/apps/test_bench_papers.py": 30,
    "tests/apps/test_bench_scale.py": 30,
    "tests/integration/test_doc_snippets.py": 30,
    "tests/apps/simulation/test_label_column_line.py": 2,  # one-pass header check, 2026-12-06
    "tests/integration/test_federation_properties.py": 29,
    "tests/apps/test_bench_masking.py": 28,
    "tests/integration/test_blips.py": 28,
    # 40 until its certificate-expiry test stopped waiting out a 15 s certificate
    # (2026-12-06, -n 0 at a load of 6, back to back: 26 and 23 s -> 11 and 11.5 s;
    # that test 15 and 14 s -> 3 and 2.5 s)
    "tests/integration/test_grpc_transport.py": 28,
    "tests/ledger/test_chain_properties.py": 28,
    "tests/ledger/test_verify_hostile_rows.py": 25,
    "tests/apps/simulation/test_interrupted_finish.py": 25,
    "tests/apps/simulation/test_many.py": 25,
    "tests/integration/test_branch_refusal_cli.py": 20,
    "tests/apps/test_bench_peers.py": 17,
    "tests/aggregation/test_keyholder_policy_properties.py": 17,
    "tests/integration/test_faults.py": 14,
    "tests/apps/simulation/test_replay_bytes.py": 14,
    "tests/integration/test_federation_grpc.py": 11,
    "tests/apps/simulation/test_untrained_cost.py": 8,
    "tests/apps/simulation/test_odd_inputs.py": 7,
    "tests/runtime/test_hostile_server_machine.py": 6,
    "tests/dp/test_noise_floor_warning.py": 6,
    "tests/integration/test_examples.py": 6,
    "tests/apps/test_bench_active.py": 5,  # 6.3-7.6 s -n 0 at a load of 13-17 (2026-12-07)
    # 23 in-process parser tests (0.6 s -n 0 at a load of 12, 2026-12-07), guessed 5.75
    "tests/apps/test_bench_scale_cell_lines.py": 1,
    # many quick tests, far below the guess from their count and marks (126 s, 58 s):
    # 9 s and 20 s in one process at a load of 5-7 (2026-12-06), halved
    "tests/integration/test_server_name_flag.py": 5,
    "tests/apps/test_cli_flag_fuzz.py": 10,
    # 2026-12-06 re-measure (see above): hypothesis-driven protocol files of one to
    # twenty tests, far above the 0.25 s a test their count gave them (loaded seconds
    # in brackets; test_hostile_schedules was 7)
    # 30 (44) until its two message fuzzes stopped playing the honest round on after
    # a refusal and building a round for a message the decoder refuses (2026-12-07, -n 0
    # --durations=0 back to back at a load of 16-18: 107 -> 44 s; the CPU of its tests
    # 10.8 -> 4.4 s): 30 scaled by that 0.41
    "tests/protocol/test_adversarial.py": 12,
    "tests/protocol/test_malicious_clients.py": 21,  # (32) one test
    "tests/protocol/test_hostile_schedules.py": 18,  # (28) one test
    "tests/protocol/test_messages.py": 18,  # (27)
    "tests/protocol/test_accusation_privacy.py": 12,  # (18)
    "tests/protocol/test_share_corruption.py": 10,  # (15)
    "tests/protocol/test_survivor_connectivity.py": 6,  # (9.5)
    # ... and files far below their guess (loaded seconds, then the guess): quick
    # integration tests of 3 s a test, and many quick protocol tests
    "tests/integration/test_empirical_audit.py": 2,  # 2.1 s, guessed 30
    "tests/integration/test_federation_flag.py": 2,  # 1.6 s, guessed 24
    "tests/integration/test_keyholder_connect_timeout.py": 2,  # 2.0 s, guessed 6
    "tests/protocol/test_graph.py": 1,  # 1.2 s, guessed 10.5
    "tests/protocol/test_round_config.py": 1,  # under 0.2 s, guessed 6.8
}

#: a file not in MEASURED_SECONDS: about this long a test (the suite's mean, 1 430 s of
#: tests over 4 864, rounded down: most tests are far shorter) ...
SECONDS_PER_TEST = 0.25
#: ... and this long a test marked ``integration`` (processes, gRPC, torch)
SECONDS_PER_INTEGRATION_TEST = 3.0


def estimated_seconds(path: str, tests: int, integration_tests: int) -> float:
    """How long the file at ``path`` (relative to the repository, as in a node id) keeps
    a worker busy: its measured figure, else a guess from its tests."""
    if path in MEASURED_SECONDS:
        return MEASURED_SECONDS[path]
    plain = tests - integration_tests
    return plain * SECONDS_PER_TEST + integration_tests * SECONDS_PER_INTEGRATION_TEST


def file_of(item: pytest.Item) -> str:
    """The file part of ``item``'s node id: the unit ``--dist loadfile`` hands out."""
    return item.nodeid.split("::", 1)[0]


def longest_files_first(items: Sequence[pytest.Item]) -> list[pytest.Item]:
    """``items`` grouped by file, the files longest first (ties in collection order),
    each file's tests in their own order."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(file_of(item), []).append(item)

    def weight(path: str) -> float:
        tests = by_file[path]
        marked = sum(1 for item in tests if item.get_closest_marker("integration"))
        return estimated_seconds(path, len(tests), marked)

    order = sorted(by_file, key=weight, reverse=True)  # stable: ties keep their order
    return [item for path in order for item in by_file[path]]
