"""Monitor a deployed model: a training baseline, captured traffic, drift, quality and alerts.

The pieces of SageMaker Model Monitor, offline (CONTRACTS §11):

- :func:`suggest_baseline` → :class:`Baseline` (``statistics.json``, ``constraints.json``);
- :func:`read_capture` reads the server's ``--capture-dir`` into one row per scored row;
- :func:`drift_report` compares traffic with the baseline per feature and names what moved;
  :func:`violations` lists the violations as ``constraint_violations.json`` does;
- :func:`join_ground_truth` and :func:`model_quality`: accuracy per hour and variant once the
  labels arrive;
- :func:`write_prometheus_config`: the lesson's Prometheus scrape config and alert rules, with
  their ``promtool`` unit tests; :class:`DriftExporter` serves the drift flags as gauges.

Example::

    baseline = monitoring.suggest_baseline(split.X_train)
    traffic = monitoring.read_capture("build/notebooks/08-monitor/capture", "penguins")
    report = monitoring.drift_report(baseline, traffic)
    monitoring.flagged_features(report)          # ['flipper_length_mm', 'body_mass_g']
"""

from mlprod.monitoring.baseline import (
    CONSTRAINTS,
    DEFAULT_THRESHOLDS,
    STATISTICS,
    Baseline,
    read_baseline,
    suggest_baseline,
)
from mlprod.monitoring.capture import (
    CaptureProblem,
    CaptureProblems,
    CaptureWarning,
    read_capture,
    wait_for_capture,
)
from mlprod.monitoring.drift import (
    drift_report,
    flagged_features,
    psi,
    violations,
    write_violations,
)
from mlprod.monitoring.exporter import DriftExporter, drift_metrics_text
from mlprod.monitoring.prometheus import (
    PromtoolError,
    check_prometheus_config,
    promtool,
    write_prometheus_config,
)
from mlprod.monitoring.quality import join_ground_truth, model_quality

__all__ = [
    "Baseline", "suggest_baseline", "read_baseline", "DEFAULT_THRESHOLDS", "STATISTICS",
    "CONSTRAINTS", "read_capture", "wait_for_capture", "CaptureProblem", "CaptureProblems",
    "CaptureWarning", "drift_report",
    "violations", "write_violations", "flagged_features", "psi", "join_ground_truth",
    "model_quality", "write_prometheus_config", "check_prometheus_config", "promtool",
    "PromtoolError", "DriftExporter", "drift_metrics_text",
]
