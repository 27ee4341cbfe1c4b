"""Moved to :mod:`fedlab.ui.dashboard`: this old import path of the live training Dashboard keeps
working. ``fedlab.widgets`` has the same objects, so the code and notebooks that import it need
no change.
"""

from fedlab.ui.dashboard import *  # noqa: F403
from fedlab.ui.dashboard import __all__  # noqa: F401
