"""Fixtures of the end-to-end runs."""

import fcntl
import shutil
import subprocess

import numpy as np
import pytest

from tests.helpers import TINY_RUN, console_script


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


@pytest.fixture(scope="session")
def tiny_run(request, tmp_path_factory):
    """The folder of a finished run of TINY_RUN for 2 steps, trained by the qgan-train console script.

    One run serves the whole session: the first worker to ask trains it under a lock and the others
    wait for it. It is read-only; a test that changes a run folder works on a copy. The command's
    standard output is kept beside it, in qgan-train.out.
    """
    root = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # an xdist worker: the session's folder is shared
        root = root.parent
    folder = root / "tiny-run"
    with open(root / "tiny-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "run" / "coverage.json").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            process = subprocess.run(
                [console_script("qgan-train"), *TINY_RUN, "--steps", "2"]
                + ["--results-dir", str(folder), "--run-name", "run"],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert process.returncode == 0, process.stderr[-2000:]
            (folder / "qgan-train.out").write_text(process.stdout)
    return folder / "run"
