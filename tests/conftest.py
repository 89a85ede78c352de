"""Shared pytest setup: make ``import edgeopt`` work from a source checkout (dev build, see
tools/dev-build.sh), make the shared helpers in this folder importable from every subfolder, and
give every test fresh, seeded random state.

Layout: one package-less folder per package area (``tests/nn``, ``tests/deploy``, ...; kernel and
binding-level tests in ``tests/kernels``), cross-cutting tests at this level. pytest imports test
files by basename (its default "prepend" mode), so basenames must stay unique across folders. The
helpers (``torch_oracle``, ``gradcheck``, ``deploy_helpers``, ``int8_sim``, ``tolerances``,
``shapes``, ``isa_paths``) live here and are imported by plain name."""
import pathlib
import sys

import numpy as np
import pytest

_TESTS = pathlib.Path(__file__).resolve().parent
_ROOT = _TESTS.parent
if str(_TESTS) not in sys.path:  # pytest's prepend mode adds it too; this makes it not depend on that
    sys.path.insert(0, str(_TESTS))
try:
    import edgeopt  # noqa: F401  (an installed build wins)
except ImportError:
    sys.path.insert(0, str(_ROOT / "python"))


@pytest.fixture(autouse=True, scope="session")
def _stage_cache(tmp_path_factory):
    """Sweeps cache trained stages machine-wide ($EDGEOPT_CACHE); tests (and the processes they
    start, which inherit the environment) use a cache of their own."""
    import os

    old = os.environ.get("EDGEOPT_CACHE")
    os.environ["EDGEOPT_CACHE"] = str(tmp_path_factory.mktemp("edgeopt-cache"))
    yield
    if old is None:
        del os.environ["EDGEOPT_CACHE"]
    else:
        os.environ["EDGEOPT_CACHE"] = old


@pytest.fixture(params=__import__("isa_paths").ISAS)
def isa(request):
    """Runs the test once per ISA path this CPU has, with that path forced (EDGEOPT_ISA-like)."""
    from edgeopt import _core

    saved = _core.runtime.active_isa()
    _core.runtime.set_isa(request.param)
    yield request.param
    _core.runtime.set_isa(saved)


@pytest.fixture
def rng():
    """A numpy Generator seeded per test (independent of edgeopt's own generator)."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_edgeopt():
    import edgeopt

    edgeopt.manual_seed(0)
    yield
