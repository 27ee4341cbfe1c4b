"""fedlab: see how federated learning works (start with ``notebooks/00_index.ipynb``).

Importing fedlab first silences TensorFlow's start-up log lines and sets its thread count
(see :mod:`fedlab.runtime`). The names below are the public API; modules hold the rest:

* :mod:`fedlab.data` — datasets that work offline (digits, Synthetic(α, β)) and MNIST's loader
* :mod:`fedlab.partition` — client splits (:class:`~fedlab.partition.ClientSplit`)
* :mod:`fedlab.models` — ``FedModel`` and friends, all returning logits
* :mod:`fedlab.algorithms` — ``FedAvg``, ``FedSGD``: a round as four slots
* :mod:`fedlab.steps` — the stages of a round, one client at a time, for teaching
* :mod:`fedlab.engine` — the fast engine, run by :func:`fedlab.simulate`
* :mod:`fedlab.history`, :mod:`fedlab.metrics`, :mod:`fedlab.plot`
"""

from fedlab.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

from fedlab import algorithms, data, history, metrics, models, partition, plot, steps  # noqa: E402
from fedlab.algorithms import Algorithm, FedAvg, FedSGD  # noqa: E402
from fedlab.data import Dataset, load_digits, load_mnist, synthetic  # noqa: E402
from fedlab.engine import DivergenceError, Simulation, simulate  # noqa: E402
from fedlab.history import History, RoundRecord  # noqa: E402
from fedlab.models import FedModel  # noqa: E402
from fedlab.partition import ClientSplit  # noqa: E402
from fedlab.runtime import versions  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Algorithm",
    "ClientSplit",
    "Dataset",
    "DivergenceError",
    "FedAvg",
    "FedModel",
    "FedSGD",
    "History",
    "RoundRecord",
    "Simulation",
    "algorithms",
    "data",
    "history",
    "load_digits",
    "load_mnist",
    "metrics",
    "models",
    "partition",
    "plot",
    "simulate",
    "steps",
    "synthetic",
    "versions",
]
