"""fedlab's algorithms on Flower (``14_from_simulation_to_deployment``)."""

from fedlab.flower.apps import (  # noqa: F401
    COMPRESSIONS,
    DATASETS,
    INSTALL_HINT,
    ON_NODE_FAILURE,
    PARTITIONS,
    FlowerConfig,
    LocalFederation,
    write_app,
)


def __getattr__(name: str):
    """``server_app`` and ``client_app``, built on first use (:mod:`fedlab.flower.apps`)."""
    if name in ("server_app", "client_app"):
        from fedlab.flower import apps

        return getattr(apps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
