"""load_run and qgan-sample: a trained generator reloaded the Keras way reproduces its run."""

import json
import os

import numpy as np
import pytest

from qgan.training import sample_cli
from qgan.training.builders import build_generator
from qgan.training.config import TrainConfig
from qgan.training.readers import RunFolderError
from qgan.training.saved_generator import load_run


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
        ([str(tmp_path / "missing"), "--output", str(tmp_path / "a.csv")], "does not exist"),
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
    with pytest.raises(RunFolderError, match="holds no trained generator"):
        load_run(str(tmp_path))
