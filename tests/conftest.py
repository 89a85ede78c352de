"""Shared pytest setup: make ``import edgeopt`` work from a source checkout (dev build, see
tools/dev-build.sh) and give every test fresh, seeded random state."""
import pathlib
import sys

import numpy as np
import pytest

_ROOT = pathlib.Path(__file__).resolve().parent.parent
try:
    import edgeopt  # noqa: F401  (an installed build wins)
except ImportError:
    sys.path.insert(0, str(_ROOT / "python"))


@pytest.fixture
def rng():
    """A numpy Generator seeded per test (independent of edgeopt's own generator)."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_edgeopt():
    import edgeopt

    edgeopt.manual_seed(0)
    yield
