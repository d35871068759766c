"""Fixtures shared by the test modules: the data, a fitted model, repositories, a server, the app.

A test module may define a fixture of the same name for its own needs (a module-wide writable
copy, a server with other arguments); pytest then uses the module's. Imports sit in the fixtures,
so a run that needs none of them does not pay for ONNX or the server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlprod import data


@pytest.fixture(scope="session")
def split() -> data.Split:
    """The course's seeded train/test split."""
    return data.split()


@pytest.fixture(scope="session")
def fitted_pipeline(split):
    """The lesson-01 pipeline (logistic regression) fitted on the training split."""
    return data.make_pipeline().fit(split.X_train, split.y_train)


@pytest.fixture(scope="session")
def repository() -> Path:
    """The course's cached model repository (penguins 1 and 2, both aliases): read it, never write."""
    from mlprod import quickstart

    return quickstart.model_repository()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A writable copy of the course's repository, fresh for each test."""
    from _server_fixtures import copy_repository

    return copy_repository(tmp_path / "models")


@pytest.fixture(scope="module")
def module_repo(tmp_path_factory) -> Path:
    """A writable copy of the course's repository shared by a module's tests (they only read it)."""
    from _server_fixtures import copy_repository

    return copy_repository(tmp_path_factory.mktemp("repo") / "models")


@pytest.fixture(scope="module")
def server(repository):
    """The reference server over the course's repository, live on a free port for the module."""
    from mlprod.serving import LocalServer

    with LocalServer(repository) as running:
        yield running


@pytest.fixture(scope="module")
def app_client(repository):
    """The server's app in this process (starlette's TestClient), over the course's repository."""
    from _server_fixtures import TestClient

    from server import create_app

    app = create_app(repository, access_log=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def rows(split) -> list[dict]:
    """Three held-out rows as JSON records (missing values as null)."""
    from _server_fixtures import records

    return records(split.X_test.head(3))


@pytest.fixture(scope="module")
def context(repository, tmp_path_factory) -> Path:
    """A container build context written from the course's repository."""
    from mlprod import container

    return container.build_context(repository, tmp_path_factory.mktemp("ctx") / "context")


@pytest.fixture
def wheel_context(repository, tmp_path) -> Path:
    """A build context of the course's repository with a wheelhouse: where wheels made here fit
    the image, its build needs no network."""
    from mlprod import container

    return container.build_context(repository, tmp_path / "context", wheels="auto")


@pytest.fixture
def engine_and_base(request):
    """Yield the container engine and base image (or skip); then remove this test's containers
    (named ``mlprod-<pid>-...``) and the image its module tags ``TAG``."""
    from _server_fixtures import engine_or_skip

    from mlprod import container

    found, base = engine_or_skip()
    yield found, base
    eng = container.Engine.detect(found)
    names = eng.run("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    for name in names:
        if name.startswith(f"mlprod-{os.getpid()}-"):
            eng.run("rm", "-f", name, check=False)
    eng.run("rmi", "-f", request.module.TAG, check=False)
