"""The fidelity, averaging and detector flags' values train on the default path (compiled under XLA)."""

import json

import numpy as np
import pytest

from tests.helpers import TRAIN, run_script

SHORT = [
    "--layers", "1", "--cutoff", "6", "--batch-size", "8", "--n-critic", "2", "--steps", "4",
    "--eval-every", "2", "--eval-samples", "100", "--no-tensorboard",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags",
    [
        [
            "--latent-distribution", "gaussian", "--energy-weight", "0.5", "--mmd-weight", "0.5",
            "--average-decay", "0.99", "--detector-efficiency", "0.9", "--dark-counts", "0.05",
            "--output-loss", "0.9", "--latent-output",
        ],
        ["--detector", "threshold", "--average-decay", "0", "--detector-efficiency", "0.8"],
    ],
    ids=["fidelity-terms-and-lossy-pnr", "threshold-without-average"],
)  # fmt: skip
def test_the_values_train_under_xla_in_a_fresh_process(tmp_path, flags):
    done = run_script(TRAIN, *SHORT, *flags, "--results-dir", tmp_path, "--run-name", "run")
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["jit_compile"] is True
    for flag, value in zip(flags, flags[1:] + [None]):
        if flag.startswith("--") and value is not None and not value.startswith("--"):
            stored = config[flag[2:].replace("-", "_")]
            assert str(stored) == value or float(stored) == float(value), flag
    final = json.loads((run / "coverage.json").read_text())
    assert final["step"] == 4 and final["status"] == "completed"
    assert np.isfinite(final["fidelity"]["w1"]) and np.isfinite(final["trace_mean"])
    assert "d_loss" in done.stdout and "W1" in done.stdout
