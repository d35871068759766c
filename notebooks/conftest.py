"""Print each notebook's execution time at the end of the notebook test run."""

from __future__ import annotations

from collections import defaultdict

_SECONDS: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    _SECONDS[report.fspath] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _SECONDS:
        return
    terminalreporter.section("notebook execution times")
    for path, seconds in sorted(_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:6.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_SECONDS.values()):6.1f} s  in all (kernel time, summed)")
