"""Moved to :mod:`fedlab.ui.privacy`: this old import path of the DP-FedAvg panel keeps working.
``fedlab.privacy_panel`` has the same objects, so the code and notebooks that import it need no
change.
"""

from fedlab.ui.privacy import *  # noqa: F403
from fedlab.ui.privacy import __all__  # noqa: F401
