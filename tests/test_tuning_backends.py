"""mlprod.tuning: where fits run (threads, processes, Dask) and the progress bar that counts them."""

from __future__ import annotations

import socket

import joblib
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlprod import tuning

SMALL = {"C": [0.01, 1.0, 100.0]}


@pytest.fixture(scope="module")
def serial():
    """The reference: the same search, one fit at a time in this process."""
    return tuning.search("logistic_regression", SMALL, cv=3, progress=False, n_jobs=1)


_FITTED_ON: list[str] = []


class _WhereLR(LogisticRegression):
    """A logistic regression that notes where it was fitted: a Dask worker's address or "here"."""

    def fit(self, X, y, **params):
        from dask.distributed import get_worker

        try:
            _FITTED_ON.append(get_worker().address)
        except ValueError:
            _FITTED_ON.append("here")
        return super().fit(X, y, **params)


def test_progress_bar_counts_every_fit(capsys):
    result = tuning.search("logistic_regression", SMALL, cv=3, progress=True, n_jobs=1)
    err = capsys.readouterr().err
    assert f"{result.n_fits}/{result.n_fits}" in err


def test_progress_bar_grows_with_each_halving_round(capsys):
    space = {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}
    result = tuning.search("logistic_regression", space, method="halving", progress=True)
    assert result.n_fits > 5 * len(space["C"])  # later rounds refit the survivors
    assert f"{result.n_fits}/{result.n_fits}" in capsys.readouterr().err


def test_n_jobs_and_an_explicit_joblib_backend_do_not_change_the_result(serial):
    # Worker processes receive the search by pickling; its progress bar must stay here.
    with joblib.parallel_config(backend="loky", n_jobs=2):
        other = tuning.search("logistic_regression", SMALL, cv=3, progress=True)
    threads = tuning.search("logistic_regression", SMALL, cv=3, progress=False, n_jobs=2)
    for result in (other, threads):
        pd.testing.assert_frame_equal(result.results.drop(columns="fit_time"),
                                      serial.results.drop(columns="fit_time"))


def test_dask_path_fits_on_the_cluster_and_gives_the_local_result(serial):
    from dask.distributed import Client, LocalCluster

    _FITTED_ON.clear()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        worker = next(iter(cluster.workers.values())).address
        result = tuning.search(_WhereLR(max_iter=1000), SMALL, cv=3, progress=False,
                               cluster=client)
    # Every cross-validation fit ran on the worker; only the final refit ran here.
    assert _FITTED_ON.count(worker) == result.n_fits == 9
    assert _FITTED_ON.count("here") == 1 and len(_FITTED_ON) == 10
    columns = ["C", "mean_score", "std_score", "mean_train_score", "rank"]
    pd.testing.assert_frame_equal(result.results[columns], serial.results[columns])


def test_an_unreachable_scheduler_is_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(tuning.backends, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ConnectionError, match=r"No Dask scheduler answered at .*cluster='local'"):
            tuning.compare({"logistic_regression": SMALL}, cluster=address, progress=False)


# -- the private APIs behind one adapter each ----------------------------------------------------
def test_run_search_hook_is_what_the_progress_adapter_expects():
    # Fails with "scikit-learn <version> changed the private hook ..." after an upgrade that
    # changes it; the progress tests above then say whether the counts still add up.
    tuning.progress.check_run_search()


def test_a_changed_run_search_is_named_with_the_scikit_learn_version(monkeypatch):
    import sklearn
    from sklearn.model_selection import GridSearchCV

    monkeypatch.setattr(GridSearchCV, "_run_search", lambda self, evaluate: None)
    with pytest.raises(RuntimeError, match=rf"^scikit-learn {sklearn.__version__} changed the "
                       r"private hook GridSearchCV._run_search .*progress=False"):
        tuning.search("logistic_regression", SMALL, cv=3, progress=True)


def test_without_a_bar_the_search_is_scikit_learns_own():
    from sklearn.model_selection import GridSearchCV

    searcher = tuning.progress.tracked_search(
        "grid", False, None, tuning.progress.FitProgress(False, "grid search"), chunk=2,
        param_grid={"C": [1.0]})
    assert type(searcher) is GridSearchCV  # nothing private in the way


def test_joblib_dask_backend_is_what_the_cluster_adapter_expects():
    tuning.backends.check_dask_backend()


def test_a_changed_joblib_dask_backend_is_named_with_the_joblib_version(monkeypatch):
    import joblib._dask

    monkeypatch.delattr(joblib._dask, "DaskDistributedBackend")
    with pytest.raises(RuntimeError, match=rf"^joblib {joblib.__version__} changed its private "
                       r"Dask backend: .*cluster=None"):
        tuning.backends.check_dask_backend()
