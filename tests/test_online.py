"""mlprod.online: latency per concurrency, request-size sweeps and their plot, a killed job, a Dask bar."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from mlprod import batch, data, online


@pytest.fixture(scope="module")
def rows():
    return data.synthesize(200, seed=3)[data.FEATURES]


def test_latency_gives_one_row_of_figures_per_concurrency(server, rows):
    table = online.latency(server.url, "penguins", rows, 20, concurrencies=(1, 4))
    assert list(table.index) == [1, 4] and table.index.name == "concurrency"
    assert (table["requests"] == 20).all() and (table["errors"] == 0).all()
    assert (table["p99_ms"] >= table["p50_ms"]).all() and (table["p50_ms"] > 0).all()
    assert np.allclose(table["req_per_s"], table["rows_per_s"])  # one row per request


def test_sweep_sends_each_size_and_counts_rows(server, rows):
    table = online.sweep(server.url, rows, sizes=(1, 10, 100), rows_per_size=100, min_requests=3,
                         model="penguins")
    assert list(table.index) == [1, 10, 100]
    assert list(table["requests"]) == [100, 10, 3]  # rows_per_size // size, at least min_requests
    assert np.allclose(table["rows_per_s"], table["req_per_s"] * table.index)


def test_sweep_refuses_too_few_rows_and_reports_a_bad_answer(server, rows):
    with pytest.raises(ValueError, match="largest request needs 10,000"):
        online.sweep(server.url, rows)
    with pytest.raises(ValueError, match="answered 400"):
        online.sweep(server.url, rows.iloc[:, :3], sizes=(1,), rows_per_size=1, min_requests=1)


def test_plot_sweep_draws_a_point_per_size_and_a_line_per_batch_job():
    import matplotlib

    matplotlib.use("Agg")
    table = pd.DataFrame({"p50_ms": [1.0, 2.0], "p99_ms": [2.0, 5.0], "rows_per_s": [1e3, 1e5]},
                         index=pd.Index([1, 1000], name="rows_per_request"))
    ax = online.plot_sweep(table, batch={"in-process": 2e5})
    assert len(ax.lines) == 3 and ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.texts] == ["1 row", "1,000 rows"]


def test_rounded_keeps_three_significant_digits_and_integers():
    frame = online.rounded(pd.DataFrame({"x": [1234.5678, 0.012345, 0.0], "n": [1, 2, 3]}))
    assert frame["x"].tolist() == [1230.0, 0.0123, 0.0]
    assert frame["n"].tolist() == [1, 2, 3] and frame["n"].dtype == np.int64


def test_kill_after_first_file_leaves_complete_outputs_that_a_rerun_finishes(repository, tmp_path):
    folder = tmp_path / "in"
    data.write_batch_input(folder / "a.csv", 20_000, bad_lines=[5])
    for name in ("b.csv", "c.csv"):
        shutil.copy(folder / "a.csv", folder / name)
    expected = tmp_path / "expected"
    batch.transform(folder, expected, model_repository=repository, model="penguins")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mlprod.batch", "--input", str(folder), "--output", str(out),
               "--model-repository", str(repository), "--model", "penguins",
               "--max-payload-mb", "0.02"]
    left = online.kill_after_first_file(command, out)
    assert left["returncode"] == -9 and 1 <= len(left["finished"]) < 3, left
    assert all(t.endswith(".<random>.tmp") for t in left["temporary"])
    for name in left["finished"]:
        assert (out / name).read_bytes() == (expected / name).read_bytes()
    batch.transform(folder, out, model_repository=repository, model="penguins")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {
        p.name: p.read_bytes() for p in expected.iterdir()}


def test_kill_after_first_file_says_when_the_job_ended_first(tmp_path):
    with pytest.raises(RuntimeError, match="before it could be killed"):
        online.kill_after_first_file([sys.executable, "-c", "pass"], tmp_path)


def test_progress_counts_every_partition_and_prints_the_total(repository, tmp_path, capsys):
    from distributed import Client, LocalCluster

    source = data.write_batch_input(tmp_path / "rows.csv", 3_000, bad_lines=[2])
    model = batch.load_model(repository, "penguins")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        frame = client.persist(batch.predictions(source, model, chunk_bytes=20_000))
        online.progress(frame, "parts")
        assert int(frame["label"].count().compute()) == 2_999
    captured = capsys.readouterr()
    assert f"parts: {frame.npartitions}/{frame.npartitions} done" in captured.out
    assert frame.npartitions >= 3
