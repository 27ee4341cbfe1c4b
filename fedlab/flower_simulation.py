"""Moved to :mod:`fedlab.flower.simulation`: this old import path of fedlab's apps on Flower's
simulation runtime (Ray) keeps working. ``fedlab.flower_simulation`` has the same objects, so the
code and notebooks that import it need no change; ``python -m fedlab.flower_simulation`` still
runs a run's JSON file.
"""

import sys

from fedlab.flower.simulation import *  # noqa: F403
from fedlab.flower.simulation import __all__, _main  # noqa: F401

if __name__ == "__main__":
    sys.exit(_main())
