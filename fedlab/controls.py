"""The sliders the live panels share (``SplitExplorer``, ``Dashboard``, ``Playground``).

A panel describes each slider as ``(widget class, description, min, max, step)``; a
``FloatLogSlider``'s min and max are powers of 10, as ipywidgets has them. :func:`checked_slider`
checks the starting value against that range with fedlab's plain-English errors (naming the
argument) and builds the slider.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from fedlab.validate import check_float, check_int

SliderSpec = tuple[type, str, float, float, float]
"""``(widget class, description, min, max, step)``."""


def checked_slider(name: str, spec: SliderSpec, value: Any, **options: Any) -> widgets.ValueWidget:
    """A slider for argument ``name`` built from ``spec``, starting at ``value`` once checked.

    ``value`` must lie in the slider's range (for a log slider: ``10**min`` to ``10**max``),
    else a ValueError/TypeError names ``name``. ``options`` go to the widget (style, layout).

    Example:
        >>> checked_slider("alpha", (widgets.FloatLogSlider, "α", -2, 2, 0.1), 0.5).value
        0.5
        >>> checked_slider("k", (widgets.IntSlider, "k", 1, 5, 1), 9)
        Traceback (most recent call last):
        ...
        ValueError: k must be an integer in [1, 5], got 9
    """
    kind, description, low, high, step = spec
    if kind is widgets.IntSlider:
        value = check_int(name, value, low=low, high=high)
    else:
        bounds = (10.0**low, 10.0**high) if kind is widgets.FloatLogSlider else (low, high)
        value = check_float(name, value, low=bounds[0], high=bounds[1])
    return kind(
        value=value,
        min=low,
        max=high,
        step=step,
        description=description,
        continuous_update=False,
        **options,
    )


def round_log(value: float) -> float:
    """A log slider's value as meant: 0.1 for 0.10000000000000002, 0.2 for 0.19952623.

    Example:
        >>> round_log(0.19952623149688797)
        0.2
    """
    return float(f"{value:.3g}")
