"""Shared pytest set-up: plots render off-screen in the test process (notebook kernels keep the
inline backend, as a student's do)."""

import matplotlib

matplotlib.use("Agg")
