"""Moved to :mod:`fedlab.flower.executor`: this old import path of the Flower SuperExec that forks
fedlab's task processes keeps working. ``fedlab.flower_executor`` has the same objects, so the
code and notebooks that import it need no change; ``python -m fedlab.flower_executor`` still
starts it.
"""

from fedlab.flower.executor import *  # noqa: F403
from fedlab.flower.executor import __all__, main  # noqa: F401

if __name__ == "__main__":
    main()
