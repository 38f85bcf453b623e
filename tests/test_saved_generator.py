"""load_run and qgan-sample: a trained generator reloaded the Keras way reproduces its run."""

import json
import os

import numpy as np
import pytest

from qgan import sample_cli
from qgan.builders import build_generator
from qgan.config import ConfigError, TrainConfig
from qgan.saved_generator import load_run
from qgan.train import train

TINY = dict(layers=1, cutoff=5, batch_size=8, n_critic=1, steps=3, eval_every=3, eval_samples=300)


@pytest.fixture(scope="module")
def heralded_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    config = TrainConfig(results_dir=str(folder), run_name="heralded", tensorboard=False, **TINY)
    assert config.readout == "heralded" and config.jit_compile
    train(config, log=lambda line: None)
    return str(folder / "heralded"), config


@pytest.mark.slow
def test_load_run_reproduces_the_runs_own_final_evaluation(heralded_run):
    run_dir, config = heralded_run
    saved = json.loads(open(os.path.join(run_dir, "generator.json")).read())
    assert saved["registered_name"] == "qgan>QuantumGenerator"
    assert saved["config"]["readout"] == "heralded" and saved["config"]["cutoff"] == 5
    import qgan

    generator = qgan.load_run(run_dir)
    assert type(generator).__name__ == "QuantumGenerator" and generator.outcomes == 5
    # the run evaluated with seed (seed, step) in chunks of min(250, n)
    samples, trace, outcomes = generator.generate(300, chunk_size=250, seed=[config.seed, 3], outcomes=True)
    np.testing.assert_allclose(samples, np.load(os.path.join(run_dir, "samples.npy")), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outcomes, np.load(os.path.join(run_dir, "outcomes.npy")))
    final = json.loads(open(os.path.join(run_dir, "coverage.json")).read())
    assert (float(np.mean(trace)), float(np.min(trace))) == pytest.approx(
        (final["trace_mean"], final["trace_min"]), rel=1e-5
    )


@pytest.mark.slow
def test_qgan_sample_writes_csv_and_npy(heralded_run, tmp_path, capsys):
    run_dir, _ = heralded_run
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


def test_qgan_sample_refuses_bad_input_in_one_line_and_keeps_existing_files(tmp_path, capsys):
    existing = tmp_path / "kept.csv"
    existing.write_text("x,y\n1,2\n")
    cases = [
        (
            [str(tmp_path), "--samples", "0", "--output", str(tmp_path / "a.csv")],
            "--samples 0 is not allowed",
        ),
        ([str(tmp_path), "--output", str(tmp_path / "a.txt")], "unknown format .txt; allowed: .csv, .npy"),
        ([str(tmp_path), "--output", str(tmp_path / "no" / "a.csv")], "does not exist"),
        ([str(tmp_path), "--output", str(existing)], "exists already"),
        ([str(tmp_path / "missing"), "--output", str(tmp_path / "a.csv")], "is not a folder"),
        ([str(tmp_path), "--output", str(tmp_path / "a.npy")], "holds no trained generator"),
    ]
    for argv, message in cases:
        assert sample_cli.main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error, error
    assert existing.read_text() == "x,y\n1,2\n"
    assert sorted(os.listdir(tmp_path)) == ["kept.csv"]


def test_a_run_folder_from_before_the_keras_format_still_loads(tmp_path):
    config = TrainConfig(generator="classical", jit_compile=False)
    generator = build_generator(config)
    for index, weight in enumerate(generator.weights):
        weight.assign(np.full(weight.shape, 0.1 * (index + 1), np.float32))
    saved = {key: value for key, value in config.to_dict().items() if key not in ("tensorboard", "readout")}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    np.savez(
        tmp_path / "generator.weights.npz",
        **{weight.path.replace("/", "."): weight.numpy() for weight in generator.weights},
    )
    loaded = load_run(str(tmp_path))
    assert type(loaded).__name__ == "ClassicalGenerator"
    for index, weight in enumerate(loaded.weights):
        np.testing.assert_array_equal(weight.numpy(), np.full(weight.shape, 0.1 * (index + 1), np.float32))


def test_load_run_of_a_folder_without_a_generator_names_what_is_missing(tmp_path):
    with pytest.raises(ConfigError, match="holds no trained generator"):
        load_run(str(tmp_path))
