"""Where a search's fits run: threads on the local cores, or a Dask cluster through joblib.

:func:`cluster_backend` is the one place mlprod uses joblib's private Dask backend class
(``joblib._dask.DaskDistributedBackend``); :func:`check_dask_backend` says when it changed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

#: Seconds to wait for a Dask scheduler given by address.
CONNECT_TIMEOUT = 10.0
_ADDRESS = re.compile(r"^([a-z]+://)?[^\s/:]+:\d+$")


@contextlib.contextmanager
def run_on(cluster: Any, n_jobs: int | None) -> Iterator[int]:
    """Run joblib on the local cores, or on Dask when given a cluster, an address or ``"local"``.

    Yields the number of fits that can run at once.
    """
    import joblib

    if cluster is None:
        # Threads, not processes: on data this small a fit takes milliseconds, while starting
        # a pool of worker processes takes seconds; the fits release the GIL in their
        # numerical cores. An explicit joblib.parallel_config(backend=...) still wins.
        with joblib.parallel_config(prefer="threads"):
            yield joblib.effective_n_jobs(n_jobs)
        return
    from dask.distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if isinstance(cluster, Client):
            client = cluster
        elif cluster == "local":
            local = stack.enter_context(LocalCluster(dashboard_address=None))
            client = stack.enter_context(Client(local))
        elif isinstance(cluster, str):
            client = stack.enter_context(connect(Client, cluster))
        else:
            client = stack.enter_context(Client(cluster))
        with client.as_current(), joblib.parallel_config(backend=cluster_backend(client)):
            yield max(1, sum(client.ncores().values()))


def connect(client_class: type, address: str) -> Any:
    """Connect a Dask client to a scheduler address within :data:`CONNECT_TIMEOUT` seconds.

    Raises
    ------
    ValueError
        For something that is no scheduler address.
    ConnectionError
        When no scheduler answers there, saying how to start one.
    """
    timeout = CONNECT_TIMEOUT
    if not _ADDRESS.match(address):
        raise ValueError(
            f"cluster={address!r} is not a Dask scheduler address; give e.g. "
            "'tcp://127.0.0.1:8786', 'local' for a local cluster, or None for the local cores."
        )
    try:
        return client_class(address, timeout=timeout)
    except (OSError, TimeoutError) as error:
        raise ConnectionError(
            f"No Dask scheduler answered at {address!r} within {timeout:g} s ({error}). Start one "
            "(`dask scheduler`, then `dask worker <address>`), or pass cluster='local'."
        ) from error


def _dask_backend_class() -> type:
    import joblib

    try:
        from joblib._dask import DaskDistributedBackend
    except ImportError as exc:
        raise _changed(joblib.__version__, f"joblib._dask.DaskDistributedBackend is gone ({exc})"
                       ) from exc
    return DaskDistributedBackend


def check_dask_backend() -> None:
    """Raise, naming joblib's version, when its private Dask backend is not what this file expects.

    Raises
    ------
    RuntimeError
        When ``joblib._dask.DaskDistributedBackend`` is gone, or has no ``effective_n_jobs``.
    """
    import inspect

    import joblib

    backend = _dask_backend_class()
    method = getattr(backend, "effective_n_jobs", None)
    params = list(inspect.signature(method).parameters) if callable(method) else []
    if params != ["self", "n_jobs"]:
        raise _changed(joblib.__version__, "DaskDistributedBackend.effective_n_jobs takes "
                       f"{params}, not (self, n_jobs)")


def _changed(version: str, what: str) -> RuntimeError:
    return RuntimeError(
        f"joblib {version} changed its private Dask backend: {what}. mlprod.tuning.backends."
        "cluster_backend subclasses it; update that adapter, or run searches with cluster=None "
        "(the local cores) meanwhile.")


def cluster_backend(client: Any) -> Any:
    """Return Dask's joblib backend on ``client``, using the cluster even when it has one thread.

    joblib runs a call in the calling process when its backend offers a single slot; a cluster
    was asked for, so its single slot is used instead (the scheduler queues the fits). The public
    ``parallel_config(backend="dask")`` cannot say so: the backend ignores ``n_jobs`` and counts
    the cluster's threads, hence the subclass.
    """
    check_dask_backend()

    class ClusterBackend(_dask_backend_class()):
        def effective_n_jobs(self, n_jobs):
            return max(2, super().effective_n_jobs(n_jobs))

    return ClusterBackend(client=client)
