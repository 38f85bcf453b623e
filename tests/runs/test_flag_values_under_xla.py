"""The documented flags' values train on the default path (compiled under XLA), each in a fresh process.

Two runs carry them all: the fidelity, averaging and detector flags, both values of
--xla-fusion-emitters, and both of --compile-cache (which fills XLA's cache under the run's own
$XDG_CACHE_HOME, or leaves it empty).
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import TRAIN, run_script

SHORT = [
    "--layers", "1", "--cutoff", "6", "--batch-size", "8", "--n-critic", "2", "--steps", "4",
    "--eval-every", "2", "--eval-samples", "100", "--no-tensorboard",
]  # fmt: skip
FLAG_VALUES = [
    [
        "--latent-distribution", "gaussian", "--energy-weight", "0.5", "--mmd-weight", "0.5",
        "--average-decay", "0.99", "--detector-efficiency", "0.9", "--dark-counts", "0.05",
        "--output-loss", "0.9", "--latent-output", "--xla-fusion-emitters", "--compile-cache",
    ],
    [
        "--detector", "threshold", "--average-decay", "0", "--detector-efficiency", "0.8",
        "--no-xla-fusion-emitters", "--no-compile-cache",
    ],
]  # fmt: skip
SWITCHES = {
    "--latent-output": ("latent_output", True),
    "--xla-fusion-emitters": ("xla_fusion_emitters", True),
    "--no-xla-fusion-emitters": ("xla_fusion_emitters", False),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags", FLAG_VALUES, ids=["fidelity-terms-lossy-pnr-emitters-cache", "threshold-plain"]
)
def test_the_values_train_under_xla_in_a_fresh_process(tmp_path, flags):
    environment = {key: value for key, value in os.environ.items() if key != "TF_XLA_FLAGS"}
    environment["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    done = run_script(TRAIN, *SHORT, *flags, "--results-dir", tmp_path, "--run-name", "run", env=environment)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["jit_compile"] is True
    for flag, value in zip(flags, flags[1:] + [None]):
        if flag in SWITCHES:
            key, expected = SWITCHES[flag]
            assert config[key] is expected, flag
        elif flag.startswith("--") and value is not None and not value.startswith("--"):
            stored = config[flag[2:].replace("-", "_")]
            assert str(stored) == value or float(stored) == float(value), flag
    final = json.loads((run / "coverage.json").read_text())
    assert final["step"] == 4 and final["status"] == "completed"
    assert np.isfinite(final["fidelity"]["w1"]) and np.isfinite(final["trace_mean"])
    assert "d_loss" in done.stdout and "W1" in done.stdout
    cache = tmp_path / "cache" / "qgan" / "xla" / f"tf-{tf.__version__}"
    entries = os.listdir(cache) if cache.exists() else []
    if "--compile-cache" in flags:
        assert entries and all(name.startswith("xla_compile_cache") for name in entries)
    else:
        assert entries == []
