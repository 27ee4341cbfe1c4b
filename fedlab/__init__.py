"""fedlab: see how federated learning works (start with ``notebooks/00_index.ipynb``)."""

from fedlab.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

__version__ = "0.1.0"
