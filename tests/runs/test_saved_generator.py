"""A trained generator reloaded the Keras way reproduces its run; qgan-sample writes it."""

import json
import os

import numpy as np
import pytest

from qgan.training import sample_cli
from qgan.training.saved_generator import load_run


@pytest.mark.slow
def test_load_run_reproduces_the_runs_own_final_evaluation(tiny_run):
    run_dir = str(tiny_run)
    config = json.loads(open(os.path.join(run_dir, "config.json")).read())
    assert config["readout"] == "heralded" and config["jit_compile"] and config["eval_samples"] == 300
    saved = json.loads(open(os.path.join(run_dir, "generator.json")).read())
    assert saved["registered_name"] == "qgan>QuantumGenerator"
    assert saved["config"]["readout"] == "heralded" and saved["config"]["cutoff"] == 5
    import qgan

    generator = qgan.load_run(run_dir)
    assert type(generator).__name__ == "QuantumGenerator" and generator.outcomes == 5
    # the run evaluated with seed (seed, step) in chunks of min(250, n)
    samples, trace, outcomes = generator.generate(
        300, chunk_size=250, seed=[config["seed"], 2], outcomes=True
    )
    np.testing.assert_allclose(samples, np.load(os.path.join(run_dir, "samples.npy")), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outcomes, np.load(os.path.join(run_dir, "outcomes.npy")))
    final = json.loads(open(os.path.join(run_dir, "coverage.json")).read())
    assert (float(np.mean(trace)), float(np.min(trace))) == pytest.approx(
        (final["trace_mean"], final["trace_min"]), rel=1e-5
    )


@pytest.mark.slow
def test_qgan_sample_writes_csv_and_npy(tiny_run, tmp_path, capsys):
    run_dir = str(tiny_run)
    assert (
        sample_cli.main([run_dir, "--samples", "40", "--seed", "7", "--output", str(tmp_path / "s.csv")]) == 0
    )
    assert "wrote 40 samples" in capsys.readouterr().out
    table = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    assert open(tmp_path / "s.csv").readline().strip() == "x,y,outcome"
    assert (
        sample_cli.main([run_dir, "--samples", "40", "--seed", "7", "--output", str(tmp_path / "s.npy")]) == 0
    )
    array = np.load(tmp_path / "s.npy")
    assert array.shape == (40, 2)
    np.testing.assert_allclose(table[:, :2], array, rtol=1e-6, atol=1e-7)
    expected, _, outcomes = load_run(run_dir).generate(40, chunk_size=40, seed=7, outcomes=True)
    np.testing.assert_allclose(array, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table[:, 2], outcomes)
