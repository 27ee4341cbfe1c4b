"""nbval, as the course uses it: a checked cell (tag ``nbval-check-output``) that also carries the
tag ``last-digit-tolerance`` passes when each decimal number it prints is within one unit of its
last printed digit of the committed one (tools/checked_outputs.py says why and how)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from checked_outputs import tolerate_in_nbval as pytest_collection_modifyitems  # noqa: E402, F401
