"""Print each notebook's execution time at the end of the notebook test run, and flag slow ones.

The goals: each notebook under 20 s, the whole suite under 60 s of wall time on 2 cores. Times on a
busy machine vary, so a slow notebook is flagged here rather than failed.
"""

from __future__ import annotations

import time
from collections import defaultdict

NOTEBOOK_GOAL_S = 20.0
SUITE_GOAL_S = 60.0
_START = time.perf_counter()

_SECONDS: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    _SECONDS[report.fspath] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _SECONDS:
        return
    terminalreporter.section("notebook execution times")
    for path, seconds in sorted(_SECONDS.items(), key=lambda kv: -kv[1]):
        flag = f"  SLOW: over the {NOTEBOOK_GOAL_S:.0f} s goal" if seconds > NOTEBOOK_GOAL_S else ""
        terminalreporter.write_line(f"{seconds:6.1f} s  {path}{flag}")
    terminalreporter.write_line(f"{sum(_SECONDS.values()):6.1f} s  in all (kernel time, summed)")
    wall = time.perf_counter() - _START
    flag = f"  SLOW: over the {SUITE_GOAL_S:.0f} s goal" if wall > SUITE_GOAL_S else ""
    terminalreporter.write_line(f"{wall:6.1f} s  wall time of the run{flag}")
