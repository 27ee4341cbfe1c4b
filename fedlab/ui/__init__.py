"""fedlab's live panels: ipywidgets controls wired to fedlab's functions and plots.

Every panel only wires controls to functions of the package and draws what they return (a
:class:`~fedlab.history.History`, a :class:`~fedlab.partition.ClientSplit`, a playground run);
none computes a number itself. Each draws into one figure that pyplot never sees and shows it as
a PNG, which stays in the notebook's output for readers without a kernel
(:func:`fedlab.controls.panel_bundle`). One module per panel, each imported by name:

* :mod:`fedlab.ui.split_explorer` — :class:`~fedlab.ui.split_explorer.SplitExplorer`: a client
  split redrawn live (``02_client_splits``);
* :mod:`fedlab.ui.dashboard` — :class:`~fedlab.ui.dashboard.Dashboard`: live training,
  Run/Stop/Step, runs compared (``03_fedsgd_vs_fedavg``);
* :mod:`fedlab.ui.playground` — :class:`~fedlab.ui.playground.Playground`: client drift on the
  2-D quadratics of :mod:`fedlab.playground` (``04_client_drift``);
* :mod:`fedlab.ui.privacy` — :class:`~fedlab.ui.privacy.PrivacyPanel`: DP-FedAvg's knobs and
  their ε (``11_differential_privacy``);
* :mod:`fedlab.ui.personalization` — :class:`~fedlab.ui.personalization.PersonalizationPanel`:
  Ditto and local-only training under label skew (``13_personalisation_and_multitask``).

Their old import paths keep working: ``fedlab.widgets``, ``fedlab.split_explorer``,
``fedlab.privacy_panel``, ``fedlab.personalization_panel`` and ``fedlab.playground.Playground``.

Example:
    >>> import numpy as np
    >>> from fedlab.ui.split_explorer import SplitExplorer
    >>> SplitExplorer(np.arange(100) % 10, num_clients=4).split.num_clients
    4
"""
