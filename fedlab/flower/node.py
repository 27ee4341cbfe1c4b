"""``flower-supernode`` that asks the SuperLink for work every few tenths of a second.

Flower 1.42's SuperNode *pulls* its messages: when the SuperLink has nothing for it, it sleeps a
fixed 3 s before asking again (and waits for each reply in 0.5 s steps). Across machines that is
a sensible load on the server; in a 3-node demo on one laptop it is most of a round. This entry
point runs Flower's own SuperNode with those waits capped at ``FEDLAB_SUPERNODE_POLL`` seconds
(default 0.5) and takes exactly ``flower-supernode``'s arguments::

    python -m fedlab.flower.node --insecure --superlink 127.0.0.1:9092 --isolation process ...

``python -m`` imports the fedlab package, and with it TensorFlow, which a SuperNode does not
need: :class:`fedlab.flower.LocalFederation` runs this file as a script instead
(``python path/to/fedlab/flower/node.py ...``), which imports only Flower.
:class:`fedlab.flower.LocalFederation` uses it by default (``fast_polling=True``). Written for
Flower 1.42 (it replaces the ``time`` module seen by ``flwr.supernode.start_client_internal``).
"""

from __future__ import annotations

import os
import sys
import time
import types

if __name__ == "__main__" and sys.path and os.path.samefile(sys.path[0], os.path.dirname(__file__)):
    del sys.path[0]  # run as a file: fedlab's own modules must not shadow others

__all__ = ["capped_time", "main"]


def capped_time(cap: float) -> types.SimpleNamespace:
    """A stand-in for the ``time`` module whose ``sleep`` never waits longer than ``cap`` s.

    Example:
        >>> fast = capped_time(0.01)
        >>> start = time.monotonic(); fast.sleep(3); time.monotonic() - start < 1
        True
    """
    names = {name: getattr(time, name) for name in dir(time) if not name.startswith("__")}
    return types.SimpleNamespace(**{**names, "sleep": lambda s: time.sleep(min(s, cap))})


def main(argv: list[str] | None = None) -> None:
    """Run ``flower-supernode`` with ``argv`` and capped idle waits."""
    cap = float(os.environ.get("FEDLAB_SUPERNODE_POLL", "0.5"))
    import flwr.supernode.start_client_internal as internal
    from flwr.supernode.cli import flower_supernode

    internal.time = capped_time(cap)
    sys.argv = ["flower-supernode", *(sys.argv[1:] if argv is None else argv)]
    flower_supernode()


if __name__ == "__main__":
    main()
