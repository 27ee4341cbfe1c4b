"""Moved to :mod:`fedlab.ui.personalization`: this old import path of the personalisation panel
keeps working. ``fedlab.personalization_panel`` has the same objects, so the code and notebooks
that import it need no change.
"""

from fedlab.ui.personalization import *  # noqa: F403
from fedlab.ui.personalization import __all__  # noqa: F401
