"""The training command line end to end: no tracebacks, held folders, --nonfinite raise."""

import os

import pytest

from qgan.training import cli
from qgan.training.config import TrainConfig
from tests.helpers import TRAIN, run_script


@pytest.mark.slow
def test_script_errors_have_no_traceback(files):
    for argv in (["--g-lr", "-1"], ["--dataset", "file", "--data", files["three_columns.csv"]]):
        process = run_script(TRAIN, *argv, "--results-dir", files["results"], timeout=120)
        assert process.returncode == 2
        assert "Traceback" not in process.stderr
        error_lines = [line for line in process.stderr.splitlines() if "error:" in line]
        assert len(error_lines) == 1


@pytest.mark.slow
def test_a_run_folder_held_by_another_process_is_a_one_line_error(tmp_path):
    from qgan.training.run_folder import LOCK_FILE, prepare_run_dir

    config = TrainConfig(generator="classical", results_dir=str(tmp_path), run_name="shared", steps=2)
    run_dir, resuming, lock = prepare_run_dir(config)  # this test process holds the folder
    assert not resuming and os.listdir(run_dir) == [LOCK_FILE]
    argv = [
        "--generator",
        "classical",
        "--results-dir",
        str(tmp_path),
        "--run-name",
        "shared",
        "--steps",
        "2",
    ]
    with lock:
        process = run_script(TRAIN, *argv, timeout=120)
        assert process.returncode == 2, process.stderr[-2000:]
        (line,) = [line for line in process.stderr.splitlines() if "error:" in line]
        assert f"another process (pid {os.getpid()}) is training in {run_dir}" in line
        assert os.listdir(run_dir) == [LOCK_FILE]  # the second process wrote nothing
    # released: the same folder can now be trained in
    process = run_script(
        TRAIN, *argv, "--eval-every", "2", "--eval-samples", "20", "--batch-size", "4", "--no-jit-compile",
        timeout=300,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-2000:]
    assert "config.json" in os.listdir(run_dir)


@pytest.mark.slow
def test_nonfinite_raise_on_the_default_engine_exits_1_with_one_line_and_a_healthy_run_finishes(
    tmp_path, monkeypatch, capsys
):
    import functools

    import keras
    import tensorflow as tf

    import qgan.training.train

    class PoisonCritic(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            kernel = self.model.critic.trainable_variables[0]
            kernel.assign(tf.fill(kernel.shape, float("nan")))

    flags = ["--nonfinite", "raise", "--steps", "2", "--eval-every", "2", "--eval-samples", "50"]
    flags += [
        "--generator",
        "classical",
        "--batch-size",
        "8",
        "--n-critic",
        "1",
        "--results-dir",
        str(tmp_path),
    ]
    assert TrainConfig().jit_compile  # the default engine: fock under XLA
    assert cli.main([*flags, "--run-name", "healthy"]) == 0
    assert "done at step 2" in capsys.readouterr().out

    unpoisoned = qgan.training.train.train
    monkeypatch.setattr(
        qgan.training.train, "train", functools.partial(unpoisoned, callbacks=[PoisonCritic()])
    )
    assert cli.main([*flags, "--run-name", "poisoned"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") <= 2, error
    assert error.startswith(
        "qgan-train: training stopped by --nonfinite raise: non-finite values in: loss, dense_0/kernel"
    ), error
