"""Fixtures of the sweep tests."""
import copy

import pytest

from sweep_helpers import TINY


@pytest.fixture
def tiny_spec():
    return copy.deepcopy(TINY)
