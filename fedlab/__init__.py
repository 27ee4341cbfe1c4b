"""fedlab: see how federated learning works (start with ``notebooks/00_index.ipynb``).

Importing fedlab first silences TensorFlow's start-up log lines and sets its thread count
(see :mod:`fedlab.runtime`). The names below are the public API; modules hold the rest:

* :mod:`fedlab.data` — datasets that work offline (digits, Synthetic(α, β)) and MNIST's loader
* :mod:`fedlab.partition` — client splits (:class:`~fedlab.partition.ClientSplit`)
* :mod:`fedlab.models` — ``FedModel`` and friends, all returning logits
* :mod:`fedlab.algorithms` — ``FedAvg``, ``FedSGD``, ``FedProx``, ``Scaffold``, ``FedAvgM``,
  ``FedAdam``, ``FedYogi``, ``FedAdagrad``: a round as four slots
* :mod:`fedlab.stragglers` — clients that finish only part of their local work
* :mod:`fedlab.steps` — the stages of a round, one client at a time, for teaching
* :mod:`fedlab.engine` — the fast engine, run by :func:`fedlab.simulate`
* :mod:`fedlab.history`, :mod:`fedlab.metrics`, :mod:`fedlab.plot`
* :mod:`fedlab.playground` — client drift on a 2-D problem you can see (import it by name)
* :mod:`fedlab.ui` — the live panels, one module each (import each by name):
  :mod:`fedlab.ui.dashboard` (the Dashboard), :mod:`fedlab.ui.split_explorer`,
  :mod:`fedlab.ui.playground`, :mod:`fedlab.ui.privacy`, :mod:`fedlab.ui.personalization`
* :mod:`fedlab.compression`, :mod:`fedlab.fine_tuning`, :mod:`fedlab.lora`,
  :mod:`fedlab.compute`, :mod:`fedlab.large_models`, :mod:`fedlab.keyboard` — large models:
  update codecs, pre-training and full/LoRA/head-only/BitFit fine-tuning, LoRA aggregation,
  client FLOPs and memory, the 7B calculator, a generated next-word dataset (import them by name)
* :mod:`fedlab.leakage`, :mod:`fedlab.privacy`, :mod:`fedlab.secure_aggregation` — privacy:
  gradient inversion (DLG/iDLG), DP-FedAvg with a real accountant, the Bonawitz et al. protocol
  (import them by name)
* :mod:`fedlab.personalization`, :mod:`fedlab.multitask` — one model does not fit every client:
  local-only, fine-tuning, FedPer, Ditto, IFCA, multi-task heads; per-client test sets come from
  :func:`fedlab.partition.hold_out` (import them by name)
* :mod:`fedlab.flower` — the same algorithms on Flower, every client a real process (needs
  ``pip install 'fedlab-edu[flower]'``; import it by name): the run's settings, the apps, a local
  federation whose rounds are short on a laptop; :mod:`fedlab.flower.simulation` runs the same
  apps on Flower's simulation runtime (``'fedlab-edu[flower-simulation]'``, Ray)
"""

from fedlab.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

from fedlab import (  # noqa: E402
    algorithms,
    data,
    history,
    metrics,
    models,
    partition,
    plot,
    steps,
    stragglers,
)
from fedlab.algorithms import (  # noqa: E402
    Algorithm,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedNova,
    FedProx,
    FedSGD,
    FedYogi,
    Scaffold,
)
from fedlab.data import Dataset, load_digits, load_mnist, synthetic  # noqa: E402
from fedlab.engine import DivergenceError, RunInterrupted, Simulation, simulate  # noqa: E402
from fedlab.history import History, RoundRecord  # noqa: E402
from fedlab.models import FedModel  # noqa: E402
from fedlab.partition import ClientSplit  # noqa: E402
from fedlab.runtime import versions  # noqa: E402
from fedlab.stragglers import Stragglers  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Algorithm",
    "ClientSplit",
    "Dataset",
    "DivergenceError",
    "RunInterrupted",
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "FedModel",
    "FedNova",
    "FedProx",
    "FedSGD",
    "FedYogi",
    "History",
    "RoundRecord",
    "Scaffold",
    "Simulation",
    "Stragglers",
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
    "stragglers",
    "synthetic",
    "versions",
]
