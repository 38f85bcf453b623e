"""The classical baseline trained end to end by the same loop."""

import json

import numpy as np
import pytest

from qgan.training.config import TrainConfig
from qgan.training.saved_generator import load_run
from qgan.training.train import train


@pytest.mark.slow
def test_train_runs_the_classical_baseline_through_the_same_loop(tmp_path):
    lines = []
    config = TrainConfig(
        generator="classical",
        results_dir=str(tmp_path),
        run_name="mlp",
        steps=30,
        eval_every=15,
        eval_samples=200,
        batch_size=16,
        n_critic=2,
    )
    result = train(config, log=lines.append)
    assert lines[0].startswith("qgan: training on ring with the classical MLP 2-6-6-2 (74 parameters)")
    assert [row["step"] for row in result.metrics] == [15, 30]
    assert result.metrics[-1]["eval_trace_min"] == 1.0
    final = json.loads((tmp_path / "mlp" / "coverage.json").read_text())
    assert final["coverage"]["num_samples"] == 200
    generator = load_run(str(tmp_path / "mlp"))
    assert sorted(weight.path for weight in generator.weights) == [
        "classical_generator/bias_0",
        "classical_generator/bias_1",
        "classical_generator/bias_2",
        "classical_generator/kernel_0",
        "classical_generator/kernel_1",
        "classical_generator/kernel_2",
    ]
    samples = generator.generate(200, chunk_size=200, seed=[config.seed, 30])[0]
    np.testing.assert_allclose(samples, np.load(tmp_path / "mlp" / "samples.npy"), atol=1e-6)
