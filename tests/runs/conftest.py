"""Fixtures of the end-to-end runs."""

import numpy as np
import pytest


@pytest.fixture
def far_cluster(tmp_path):
    """Training flags of a tiny real run: the classical MLP learns one cluster at (2, 2) in ~30 steps."""
    rng = np.random.default_rng(0)
    data, centres = tmp_path / "far.csv", tmp_path / "far_centres.csv"
    np.savetxt(data, rng.normal([2.0, 2.0], 0.3, size=(2000, 2)), delimiter=",")
    np.savetxt(centres, [[2.0, 2.0]], delimiter=",")
    return [
        "--generator", "classical", "--dataset", "file", "--data", str(data), "--centers", str(centres),
        "--std", "0.3", "--batch-size", "32", "--n-critic", "1", "--eval-samples", "100",
        "--no-jit-compile", "--no-tensorboard", "--d-lr", "1e-2",
    ]  # fmt: skip
