"""Shared pytest set-up: plots render off-screen in the test process (notebook kernels keep the
inline backend, as a student's do), and the digits every engine test trains on, loaded once."""

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as a fedlab Dataset (seed 0), shared by every test file."""
    from fedlab import data

    return data.load_digits(seed=0)
