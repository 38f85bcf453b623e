"""Shared fixtures: quiet TensorFlow, one numerical tolerance."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture
def tol():
    """Absolute tolerance for float32 physics and optimisation results."""
    return 1e-5
