"""Every runnable ``Example:`` in fedlab's docstrings works (examples needing a notebook's state are +SKIP)."""

import doctest
import importlib
import pkgutil

import pytest

import fedlab

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(fedlab.__path__, "fedlab.") if m.name != "fedlab.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
