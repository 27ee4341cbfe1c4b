"""Moved to :mod:`fedlab.flower.watchdog`: this old import path of the process that ends a
LocalFederation's processes when their owner dies keeps working. ``fedlab.flower_watchdog`` has
the same objects, so the code that imports it needs no change.
"""

from fedlab.flower.watchdog import *  # noqa: F403
from fedlab.flower.watchdog import __all__  # noqa: F401
