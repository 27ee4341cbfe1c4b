"""Moved to :mod:`fedlab.ui.split_explorer`: this old import path of the SplitExplorer panel keeps
working. ``fedlab.split_explorer`` has the same objects, so the code and notebooks that import it
need no change.
"""

from fedlab.ui.split_explorer import *  # noqa: F403
from fedlab.ui.split_explorer import __all__  # noqa: F401
