"""Fixtures shared by the test modules: the data split and a fitted pipeline."""

from __future__ import annotations

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
