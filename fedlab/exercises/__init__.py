"""Self-checks for the notebooks' exercises: each says *which* mistake it found, not only that
there is one. One module per notebook's topic; every check is also a name of this package, so a
notebook needs only ``from fedlab import exercises``.

Every exercise ends with a check cell that calls one function of this module on the student's
answer. A check either prints one line starting with ✓ that says what it verified, or raises
:class:`CheckFailed` with a message naming the mistake it recognised and what to do about it::

    >>> check_fedavg_aggregate(lambda deltas, counts: deltas[0])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fedlab.exercises.CheckFailed: fedavg_aggregate returns the first client's update...

Each check knows the wrong answers students typically give (weighting every client equally,
a server step with the wrong sign, the last round's accuracy instead of the mean of the last ten,
...): it computes what each would give on a small example it can work out by hand, and names the
one it meets. An unchanged stub (``...``, ``None``, a function that returns nothing) fails too: a
check that cannot fail is worthless, so ``tests/test_exercises.py`` runs every check on every
anticipated wrong answer and on the stub of the student version. Checks never print the expected
answer. The optional ``seed`` of the checks of functions draws a random example instead of the
hand-computed one: the teacher's hidden tests use it, so an answer cannot be fitted to the
public example (``docs/exercises-tooling.md``: student and solution versions, nbgrader).
"""

# Every check of every topic module is a name of the package (each module's __all__).
from fedlab.exercises import (
    communication,
    core,
    corrections,
    deployment,
    drift,
    leakage,
    local_steps,
    lora,
    one_round,
    overview,
    personalization,
    privacy,
    robustness,
    secure_aggregation,
    server_optimizers,
    splits,
    stragglers,
)
from fedlab.exercises.communication import *  # noqa: F403  (notebook 08)
from fedlab.exercises.core import *  # noqa: F403
from fedlab.exercises.corrections import *  # noqa: F403  (notebook 05)
from fedlab.exercises.deployment import *  # noqa: F403  (notebook 14)
from fedlab.exercises.drift import *  # noqa: F403  (notebook 04)
from fedlab.exercises.leakage import *  # noqa: F403  (notebook 10)
from fedlab.exercises.local_steps import *  # noqa: F403  (notebook 03)
from fedlab.exercises.lora import *  # noqa: F403  (notebook 09)
from fedlab.exercises.one_round import *  # noqa: F403  (notebook 01)
from fedlab.exercises.overview import *  # noqa: F403  (notebook 00)
from fedlab.exercises.personalization import *  # noqa: F403  (notebook 13)
from fedlab.exercises.privacy import *  # noqa: F403  (notebook 11)
from fedlab.exercises.robustness import *  # noqa: F403  (notebook 15)
from fedlab.exercises.secure_aggregation import *  # noqa: F403  (notebook 12)
from fedlab.exercises.server_optimizers import *  # noqa: F403  (notebook 06)
from fedlab.exercises.splits import *  # noqa: F403  (notebook 01, 02)
from fedlab.exercises.stragglers import *  # noqa: F403  (notebook 07)

__all__ = [
    *core.__all__,
    *overview.__all__,
    *one_round.__all__,
    *splits.__all__,
    *local_steps.__all__,
    *drift.__all__,
    *corrections.__all__,
    *server_optimizers.__all__,
    *stragglers.__all__,
    *communication.__all__,
    *lora.__all__,
    *leakage.__all__,
    *privacy.__all__,
    *secure_aggregation.__all__,
    *personalization.__all__,
    *deployment.__all__,
    *robustness.__all__,
]
