"""Moved to :mod:`fedlab.flower.node`: this old import path of the SuperNode that asks for work
every 0.5 s keeps working. ``fedlab.flower_node`` has the same objects, so the code and notebooks
that import it need no change; ``python -m fedlab.flower_node`` still starts it.
"""

from fedlab.flower.node import *  # noqa: F403
from fedlab.flower.node import __all__, main  # noqa: F401

if __name__ == "__main__":
    main()
