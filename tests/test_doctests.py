"""The examples in attn_core's docstrings run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import attn_core

MODULES = sorted(m.name for m in pkgutil.walk_packages(attn_core.__path__, "attn_core."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
