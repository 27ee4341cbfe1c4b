"""The modules that moved into fedlab/flower/ and fedlab/ui/ (issue 19, "rooms that match their
names") keep their old import paths: each old module gives the very objects of the new one,
quietly (the notebooks import the old paths), and the old ``python -m`` entry points still start."""

import importlib
import runpy
import sys
import warnings

import pytest

MOVED = {
    "fedlab.flower_executor": "fedlab.flower.executor",
    "fedlab.flower_node": "fedlab.flower.node",
    "fedlab.flower_simulation": "fedlab.flower.simulation",
    "fedlab.flower_watchdog": "fedlab.flower.watchdog",
    "fedlab.widgets": "fedlab.ui.dashboard",
    "fedlab.split_explorer": "fedlab.ui.split_explorer",
    "fedlab.privacy_panel": "fedlab.ui.privacy",
    "fedlab.personalization_panel": "fedlab.ui.personalization",
}
# what `fedlab.flower` had when it was one module (fedlab/flower.py), now from its submodules
FLOWER_NAMES = {
    "FlowerConfig": "fedlab.flower.config",
    "DATASETS": "fedlab.flower.config",
    "PARTITIONS": "fedlab.flower.config",
    "ON_NODE_FAILURE": "fedlab.flower.config",
    "COMPRESSIONS": "fedlab.flower.config",
    "INSTALL_HINT": "fedlab.flower.apps",
    "write_app": "fedlab.flower.apps",
    "LocalFederation": "fedlab.flower.federation",
}


@pytest.mark.parametrize(("old", "new"), MOVED.items())
def test_an_old_module_has_the_new_modules_objects_and_says_where_they_went(old, new):
    new_module = importlib.import_module(new)
    old_module = importlib.import_module(old)
    assert old_module.__all__ == new_module.__all__
    for name in new_module.__all__:
        assert getattr(old_module, name) is getattr(new_module, name), name
    assert f"Moved to :mod:`{new}`" in old_module.__doc__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importlib.reload(old_module)
    assert [w for w in caught if w.filename == old_module.__file__] == []


def test_fedlab_flower_has_the_names_it_had_as_one_module():
    import fedlab.flower

    for name, module in FLOWER_NAMES.items():
        assert getattr(fedlab.flower, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_app'"):
        fedlab.flower.no_such_app  # noqa: B018


def test_the_playground_panel_is_still_a_name_of_fedlab_playground():
    import fedlab.playground
    from fedlab.ui.playground import Playground

    assert fedlab.playground.Playground is Playground
    namespace: dict = {}
    exec("from fedlab.playground import *", namespace)
    assert namespace["Playground"] is Playground and "make_problem" in namespace
    with pytest.raises(AttributeError, match="has no attribute 'Panel'"):
        fedlab.playground.Panel  # noqa: B018


@pytest.mark.parametrize(
    ("old", "usage"),
    [
        ("fedlab.flower_executor", "python -m fedlab.flower.executor"),
        ("fedlab.flower_simulation", "python -m fedlab.flower.simulation"),
    ],
)
def test_the_old_python_m_entry_points_still_start(old, usage, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, old, raising=False)  # run fresh, as `python -m` would
    monkeypatch.setattr(sys, "argv", [old, "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module(old, run_name="__main__")
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {usage}")
