"""The pieces the live panels share (``SplitExplorer``, ``Dashboard``, ``Playground``, ...).

A panel describes each slider as ``(widget class, description, min, max, step)``; a
``FloatLogSlider``'s min and max are powers of 10, as ipywidgets has them. :func:`checked_slider`
checks the starting value against that range with fedlab's plain-English errors (naming the
argument) and builds the slider.

Every panel draws its plots as PNG bytes into an :class:`ipywidgets.Image`; :func:`panel_bundle`
is how a panel shows itself in a notebook: its widgets for a live front end, plus that PNG and a
line of text, which a viewer without a kernel (GitHub, nbviewer, a static site) shows instead of
``VBox(children=...)``.
"""

from __future__ import annotations

import base64
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


def panel_bundle(panel_widget: widgets.Widget, png: bytes, text: str) -> dict[str, Any]:
    """A live panel's notebook output: its widgets, a PNG of its plots and a line of text.

    A panel's ``_repr_mimebundle_`` returns this. A live front end shows the widgets; GitHub,
    nbviewer and static sites cannot, and show the PNG (``png``, the plots as they are drawn
    now) instead; plain-text front ends show ``text``. An empty ``png`` (nothing drawn) is left
    out rather than shown as a broken image.

    Example:
        >>> bundle = panel_bundle(widgets.VBox(), b"\\x89PNG...", "Panel(3 clients)")
        >>> sorted(bundle)
        ['application/vnd.jupyter.widget-view+json', 'image/png', 'text/plain']
        >>> bundle["text/plain"]
        'Panel(3 clients)'
    """
    if not isinstance(panel_widget, widgets.Widget):
        raise TypeError(
            f"panel_widget must be an ipywidgets Widget, got {type(panel_widget).__name__}"
        )
    bundle = dict(panel_widget._repr_mimebundle_() or {})
    bundle["text/plain"] = str(text)
    if png:
        bundle["image/png"] = base64.b64encode(bytes(png)).decode("ascii")
    return bundle
