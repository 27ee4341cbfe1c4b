"""fedlab's algorithms on Flower: clients as real processes (``14_from_simulation_to_deployment``).

:func:`fedlab.simulate` trains every client inside one Python process. This package runs the same
algorithm with `Flower <https://flower.ai>`_ (1.42, Message API): a SuperLink, one SuperNode per
client (a separate process holding only its own partition) and fedlab's server loop as a Flower
``ServerApp``. The same :class:`~fedlab.flower.config.FlowerConfig` and seed give the same data
split, initial weights, client selection and batch order as :func:`fedlab.simulate`, so both
produce the same :class:`~fedlab.history.History` numbers (``tests/test_flower.py``).

One module per concept:

* :mod:`fedlab.flower.config` — :class:`~fedlab.flower.config.FlowerConfig`, one run's settings,
  flattened into Flower's ``--run-config``;
* :mod:`fedlab.flower.apps` — the Flower apps, ``server_app`` and ``client_app``
  (``fedlab.flower:server_app``), and :func:`~fedlab.flower.apps.write_app`, a minimal Flower
  app folder pointing at them, for ``flwr run``;
* :mod:`fedlab.flower.federation` — :class:`~fedlab.flower.federation.LocalFederation`:
  SuperLink + SuperNodes on 127.0.0.1 as subprocesses, for teaching and tests:
  ``with LocalFederation(3) as fed: history = fed.run(FlowerConfig(num_clients=3))``;
* :mod:`fedlab.flower.simulation` — the same apps on Flower's simulation runtime (Ray), in a
  child process (:func:`~fedlab.flower.simulation.run_simulation_runtime`);
* the processes a LocalFederation starts besides Flower's own: :mod:`fedlab.flower.executor`
  (forks the task processes from one TensorFlow import), :mod:`fedlab.flower.node` (a SuperNode
  that polls every 0.5 s) and :mod:`fedlab.flower.watchdog` (ends them all if their owner dies).

``fedlab.flower`` itself has the names it had when it was one module — ``FlowerConfig``,
``LocalFederation``, ``write_app``, ``server_app``, ``client_app``, ``INSTALL_HINT`` and the
settings' choices (``DATASETS``, ``PARTITIONS``, ``ON_NODE_FAILURE``, ``COMPRESSIONS``) — so
``from fedlab.flower import FlowerConfig, LocalFederation`` works as before. Flower itself is
optional: this package imports without it; the apps and the federation need
``pip install 'fedlab-edu[flower]'`` (``flwr>=1.42,<1.43``).

Example:
    >>> FlowerConfig(num_clients=3).to_run_config()["algorithm"]
    'fedavg'
"""

# the names of fedlab.flower when it was one module, each documented where it is defined
from fedlab.flower.apps import INSTALL_HINT, write_app  # noqa: F401
from fedlab.flower.config import (  # noqa: F401
    COMPRESSIONS,
    DATASETS,
    ON_NODE_FAILURE,
    PARTITIONS,
    FlowerConfig,
)
from fedlab.flower.federation import LocalFederation  # noqa: F401


def __getattr__(name: str):
    """``server_app`` and ``client_app`` are :mod:`fedlab.flower.apps`'s, built on first use (so
    that fedlab imports without Flower); ``flwr run`` loads them as ``fedlab.flower:server_app``."""
    if name in ("server_app", "client_app"):
        from fedlab.flower import apps

        return getattr(apps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
