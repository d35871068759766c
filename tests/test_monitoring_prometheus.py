"""The lesson's Prometheus files: promtool checks and unit-tests them; the drift gauges serve.

Tests that need promtool or prometheus (Debian's ``prometheus`` package) skip with a message
when it is missing, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import shutil
import socket

import _prometheus as prometheus
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mlprod import data, monitoring
from mlprod.serving import free_port


@pytest.fixture(scope="module")
def report(split):
    """A drift report on data.drift's default shift: body mass and flipper length flagged."""
    return monitoring.drift_report(monitoring.suggest_baseline(split.X_train),
                                   data.drift(data.synthesize(1000, seed=(1, 7)), seed=1))


def test_written_files_pass_promtool_check_and_the_alert_unit_tests(tmp_path):
    prometheus.need("promtool")
    paths = monitoring.write_prometheus_config(tmp_path, "http://127.0.0.1:8000",
                                               drift_target="127.0.0.1:9100")
    assert sorted(paths) == ["alerts.yml", "alerts_test.yml", "prometheus.yml"]
    config = paths["prometheus.yml"].read_text()
    assert 'targets: ["127.0.0.1:8000"]' in config and "job_name: mlprod-drift" in config
    output = monitoring.check_prometheus_config(tmp_path)
    assert "SUCCESS: 9 rules found" in output and "Unit Testing:  alerts_test.yml\n  SUCCESS" in output


@pytest.mark.parametrize("alert, change", [
    ("MlprodHighErrorRate", ("ratio_rate5m > 0.05", "ratio_rate5m > 0.5")),
    ("MlprodFeatureDrift", ('check="baseline_drift_check"}) > 0', 'check="baseline_drift_check"}) > 9')),
    ("MlprodHighErrorRate", ('rate(mlprod_requests_total{code=~"4..|5.."}[5m]))',
                             'rate(mlprod_requests_total{code=~"5.."}[5m])) * 0')),
])
def test_the_alert_unit_tests_catch_a_broken_rule(tmp_path, alert, change):
    prometheus.need("promtool")
    monitoring.write_prometheus_config(tmp_path, "127.0.0.1:8000")
    rules = tmp_path / "alerts.yml"
    text = rules.read_text()
    assert change[0] in text
    rules.write_text(text.replace(change[0], change[1]))
    with pytest.raises(monitoring.PromtoolError, match=f"alertname: {alert}"):
        monitoring.promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)


def test_the_token_goes_to_a_private_file_not_the_config(tmp_path):
    paths = monitoring.write_prometheus_config(tmp_path, "127.0.0.1:8000", token="s3cret")
    assert paths["token"].read_text() == "s3cret"
    assert paths["token"].stat().st_mode & 0o777 == 0o600
    config = paths["prometheus.yml"].read_text()
    assert "s3cret" not in config and "credentials_file: token" in config


@pytest.mark.parametrize("kwargs, message", [
    ({"target": "localhost"}, "'localhost' is not an address"),
    ({"target": "ftp://127.0.0.1:21"}, "not an address"),
    ({"target": "http://127.0.0.1:8000/metrics"}, "has a path"),
    ({"target": "127.0.0.1:8000", "scrape_interval": "5 seconds"}, "not a Prometheus duration"),
])
def test_bad_addresses_and_durations_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        monitoring.write_prometheus_config(tmp_path, **kwargs)
    assert not (tmp_path / "prometheus.yml").exists()


def test_a_missing_promtool_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install -y --no-install-recommends"):
        monitoring.promtool("--version")


def _samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_drift_gauges_count_the_violations_per_feature_and_check(report):
    samples = _samples(monitoring.drift_metrics_text(report, "penguins"))
    violations = {dict(k[1])["feature"]: v for k, v in samples.items()
                  if k[0] == "mlprod_drift_violations"
                  and dict(k[1])["check"] == "baseline_drift_check"}
    assert violations == {"bill_length_mm": 0, "bill_depth_mm": 0, "flipper_length_mm": 2,
                          "body_mass_g": 2, "island": 0, "sex": 0}
    psi = samples[("mlprod_drift_statistic",
                   (("feature", "body_mass_g"), ("model", "penguins"), ("statistic", "psi")))]
    assert psi == pytest.approx(report.query("feature == 'body_mass_g' and statistic == 'psi'")
                                ["value"].item())


def test_the_exporter_serves_the_latest_report_and_frees_its_port(report):
    quiet = report.assign(violated=False)
    with monitoring.DriftExporter("penguins").start() as exporter:
        before = requests.get(exporter.url, timeout=5).text
        assert "mlprod_drift_violations" in before and 'feature="' not in before
        exporter.update(quiet)
        first = _samples(requests.get(exporter.url, timeout=5).text)
        exporter.update(report)
        second = _samples(requests.get(exporter.url, timeout=5).text)
        port = int(exporter.address.rsplit(":", 1)[1])
    key = ("mlprod_drift_violations", (("check", "baseline_drift_check"),
                                       ("feature", "body_mass_g"), ("model", "penguins")))
    assert first[key] == 0 and second[key] == 2
    with pytest.raises(ConnectionRefusedError):  # closed: nothing listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_real_prometheus_scrapes_the_drift_gauges(report, tmp_path):
    with monitoring.DriftExporter("penguins").start() as exporter:
        exporter.update(report)
        config = tmp_path / "config"
        monitoring.write_prometheus_config(config, f"127.0.0.1:{free_port()}",  # no server there
                                           drift_target=exporter.address, scrape_interval="1s",
                                           evaluation_interval="1s")
        with prometheus.running(config, tmp_path) as (api, log):
            def query(expr: str):
                return prometheus.query(api, expr)

            found = prometheus.poll(
                lambda: query('mlprod_drift_violations{check="baseline_drift_check"} > 0'), 20,
                "drift gauges", log)
            assert sorted(r["metric"]["feature"] for r in found) == ["body_mass_g",
                                                                      "flipper_length_mm"]
            assert {r["metric"]["job"] for r in found} == {"mlprod-drift"}
            down = prometheus.poll(lambda: query('up{job="mlprod"}'), 20, "scrape", log)
            assert down[0]["value"][1] == "0"
            rules = requests.get(f"{api}/api/v1/rules", timeout=5).json()["data"]["groups"]
            assert {r["name"] for g in rules for r in g["rules"]} >= {
                "MlprodHighErrorRate", "MlprodHighLatency", "MlprodFeatureDrift"}

