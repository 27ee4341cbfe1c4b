"""Quiet, reproducible TensorFlow for notebooks (introduced in ``01_one_round_by_hand``).

Importing :mod:`fedlab` calls :func:`quiet_tensorflow` *before* TensorFlow is imported, so a
student's notebook shows results instead of TensorFlow's C++/absl log lines (which also break
nbval). :func:`versions` is what every notebook's setup cell prints.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings
from collections.abc import Iterator

_THREADS_ENV = "FEDLAB_TF_THREADS"


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up log lines; call before ``import tensorflow``.

    ``TF_CPP_MIN_LOG_LEVEL=2`` hides C++ info/warning lines and ``TF_ENABLE_ONEDNN_OPTS=0``
    hides the oneDNN banner (and makes CPU results bit-reproducible across runs). Existing
    settings in the environment win.

    Example:
        >>> quiet_tensorflow()  # then: import tensorflow as tf
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    warnings.filterwarnings(
        "ignore", category=DeprecationWarning, module=r"(tensorflow|keras|google|absl)"
    )


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: TensorFlow's C++ start-up lines bypass Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and find its devices with stderr silenced, then set up threads.

    The CUDA-enabled wheel prints "Could not find cuda drivers" and "failed call to cuInit"
    from C++ before any log level applies; these lines would fill every notebook's first cell.
    Errors that stop the import are still raised (and shown) as Python exceptions.
    """
    quiet_tensorflow()
    with _stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
    configure_threads()


def configure_threads() -> int:
    """Use few TensorFlow threads (default 1, env ``FEDLAB_TF_THREADS``); return the number set.

    On small 2-core machines the vectorised engine runs 1.5-2.8x faster with one intra-op and
    one inter-op thread than with TensorFlow's default pools. Must run before the first op;
    later calls are ignored.
    """
    import tensorflow as tf

    threads = int(os.environ.get(_THREADS_ENV, "1"))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised: keep what it has
        pass
    import absl.logging

    absl.logging.set_verbosity("error")
    tf.get_logger().setLevel("ERROR")
    return threads


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a notebook depends on.

    Example:
        >>> sorted(versions())[:2]
        ['fedlab', 'keras']
    """
    import keras
    import matplotlib
    import numpy as np
    import tensorflow as tf

    from fedlab import __version__

    return {
        "fedlab": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
    }
