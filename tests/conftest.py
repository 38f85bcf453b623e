"""Shared test set-up: quiet TensorFlow, a fresh compile cache, fast XLA compiles, a frozen heap."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# qgan.runtime.compile_cache keeps XLA executables under $XDG_CACHE_HOME: each test process starts with an
# empty one, as on a fresh CI machine, and never writes into the user's ~/.cache
_CACHE_HOME = tempfile.mkdtemp(prefix="qgan-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME
atexit.register(shutil.rmtree, _CACHE_HOME, ignore_errors=True)
# the tests' runs are a few steps long, so they compile without LLVM's optimisation passes: the
# same program through the same XLA passes, in about a third less compile time and slower steps
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import pytest  # noqa: E402

from qgan.runtime.heap import freeze_imports  # noqa: E402


def pytest_collection_finish(session):
    """Freezes what collecting imported (TensorFlow, Strawberry Fields, ...) out of the collector's walks."""
    freeze_imports()


def pytest_collection_modifyitems(items):
    """Runs the tests marked slow first (in file order), then the rest.

    Under xdist's work stealing the long end-to-end runs then start early and the last minutes
    are short tests on every worker, instead of one long run beside an idle worker.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def tol():
    """Absolute tolerance for float32 physics and optimisation results."""
    return 1e-5


@pytest.fixture
def files(tmp_path):
    """Small data files, good and bad, and paths that do not exist yet (a missing file, a results folder)."""
    paths = {}
    for name, content in {
        "good.csv": "x,y\n0,0\n1,1\n2,2\n",
        "malformed.csv": "x,y\n0,0\nzero,one\n",
        "three_columns.csv": "1,2,3\n4,5,6\n",
        "nan_row.csv": "0,0\nnan,1\n",
        "empty.csv": "",
    }.items():
        path = tmp_path / name
        path.write_text(content)
        paths[name] = str(path)
    paths["missing.csv"] = str(tmp_path / "missing.csv")
    paths["results"] = str(tmp_path / "results")
    return paths
