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


@pytest.fixture
def notebook_png():
    """A function: what a notebook saves when a panel is displayed -> its PNG, width, height.

    It formats the panel as IPython does for a cell's output (so a ``_ipython_display_`` that
    bypasses the bundle is caught), checks that the output keeps the live widget and a text of
    its own (not ``VBox(...)``), and reads the PNG's size from its header.
    """
    import base64
    import struct

    from IPython.core.formatters import DisplayFormatter

    def read(panel) -> tuple[bytes, int, int]:
        output, _ = DisplayFormatter().format(panel)
        assert "application/vnd.jupyter.widget-view+json" in output, sorted(output)
        assert output["text/plain"].startswith(type(panel).__name__ + "("), output["text/plain"]
        png = base64.b64decode(output["image/png"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
        width, height = struct.unpack(">II", png[16:24])
        return png, width, height

    return read
