"""Runs that survive: checkpoints and resume after SIGKILL, Ctrl-C, bad input that loses nothing, faults."""

import csv
import hashlib
import json
import os
import shutil
import signal
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from qgan.models.critic import build_critic
from qgan.training import cli
from qgan.training.config import TrainConfig
from qgan.training.saved_generator import load_run
from qgan.training.train import train
from tests.helpers import TINY_RUN, TRAIN, run_script, start_script

TINY_FLAGS = [
    "--layers", "1", "--cutoff", "5", "--batch-size", "8", "--n-critic", "2",
    "--eval-samples", "100", "--no-jit-compile",
]  # fmt: skip
TINY = dict(layers=1, cutoff=5, batch_size=8, n_critic=2, eval_samples=100, jit_compile=False)


def metric_rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as handle:
        return list(csv.DictReader(handle))


def wait_for(path, process, timeout=300):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def load_critic(run_dir):
    critic = build_critic((64, 64))
    critic.load_weights(os.path.join(run_dir, "critic.weights.h5"))
    return critic.get_weights()


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    results = str(tmp_path)
    flags = [*TINY_FLAGS, "--steps", "60", "--eval-every", "20", "--checkpoint-every", "20"]
    flags += ["--results-dir", results]
    whole = start_script(TRAIN, *flags, "--run-name", "whole")  # independent of the other: run beside it
    process = start_script(TRAIN, *flags, "--run-name", "killed")
    wait_for(os.path.join(results, "killed", "checkpoints", "checkpoint"), process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    killed_at = max(int(row["step"]) for row in metric_rows(os.path.join(results, "killed")))
    assert killed_at < 60, "the run finished before it was killed; the test needs more steps"

    resumed = run_script(TRAIN, *flags, "--run-name", "killed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming at step" in resumed.stdout
    _, whole_stderr = whole.communicate(timeout=600)
    assert whole.returncode == 0, whole_stderr[-2000:]

    killed_dir, whole_dir = os.path.join(results, "killed"), os.path.join(results, "whole")
    assert [int(row["step"]) for row in metric_rows(killed_dir)] == list(range(20, 61, 20))
    generator_resumed, generator_whole = load_run(killed_dir), load_run(whole_dir)
    for resumed_weight, whole_weight in zip(generator_resumed.weights, generator_whole.weights):
        assert resumed_weight.path == whole_weight.path
        np.testing.assert_allclose(
            resumed_weight.numpy(), whole_weight.numpy(), rtol=1e-5, atol=1e-6, err_msg=whole_weight.path
        )
    for resumed_weight, whole_weight in zip(load_critic(killed_dir), load_critic(whole_dir)):
        np.testing.assert_allclose(resumed_weight, whole_weight, rtol=1e-5, atol=1e-6)
    # the evaluations after the resume point repeat those of the uninterrupted run
    for resumed_row, whole_row in zip(metric_rows(killed_dir), metric_rows(whole_dir)):
        assert resumed_row["modes_captured"] == whole_row["modes_captured"]
        assert float(resumed_row["eval_trace_mean"]) == pytest.approx(
            float(whole_row["eval_trace_mean"]), abs=1e-5
        )


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_a_checkpoint_and_plots(tmp_path):
    results = str(tmp_path)
    flags = [*TINY_FLAGS, "--steps", "1000000", "--eval-every", "20", "--checkpoint-every", "1000"]
    process = start_script(TRAIN, *flags, "--results-dir", results, "--run-name", "stopped")
    run_dir = os.path.join(results, "stopped")
    wait_for(os.path.join(run_dir, "metrics.csv"), process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "Resume with:" in stdout and "--run-name stopped --resume" in stdout
    last_step = int(metric_rows(run_dir)[-1]["step"])
    assert 0 < last_step < 1000000
    with open(os.path.join(run_dir, "checkpoints", "checkpoint")) as handle:
        assert f"ckpt-{last_step}" in handle.read()
    for name in (
        "coverage.json",
        "samples.npy",
        "generator.json",
        "generator.weights.h5",
        "critic.weights.h5",
        "samples.png",
        "training.png",
    ):
        assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
    assert json.loads(open(os.path.join(run_dir, "coverage.json")).read())["step"] == last_step


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, tiny_run):
    """A copy of the session's tiny run, as results/good, and the digest of every file in its folder."""
    results = tmp_path_factory.mktemp("results")
    shutil.copytree(tiny_run, results / "good")
    return str(results), digest(os.path.join(results, "good"))


def digest(folder):
    digests = {}
    for path, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(path, name), "rb") as handle:
                digests[os.path.relpath(os.path.join(path, name), folder)] = hashlib.sha256(
                    handle.read()
                ).hexdigest()
    return digests


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    contents = {
        "good.csv": "x,y\n0,0\n1,1\n2,2\n",
        "malformed.csv": "x,y\n0,0\nzero,one\n",
        "three_columns.csv": "1,2,3\n4,5,6\n",
        "nan_row.csv": "0,0\nnan,1\n",
        "inf_row.csv": "0,0\n1,inf\n",
        "empty.csv": "",
        "one_column.csv": "1\n2\n3\n",
        "centres_three_columns.csv": "0,0,0\n1,1,1\n",
    }
    paths = {}
    for name, text in contents.items():
        (folder / name).write_text(text)
        paths[name] = str(folder / name)
    np.save(folder / "flat.npy", np.zeros(6))
    paths["flat.npy"] = str(folder / "flat.npy")
    paths["missing.csv"] = str(folder / "missing.csv")
    return paths


SAME_AS_GOOD = [*TINY_RUN, "--run-name", "good"]
BAD_INPUTS = [
    # flags out of range or of the wrong type
    (["--g-lr", "-0.001"], "--g-lr -0.001 is not allowed; use a finite number > 0"),
    (["--d-lr", "inf"], "--d-lr inf is not allowed"),
    (["--steps", "ten"], "argument --steps: invalid int value: 'ten'"),
    (["--cutoff", "1"], "--cutoff 1 is not allowed; use an integer from 2 to 64"),
    (["--modes", "7"], "--modes 7 is not allowed; use an integer from 2 to 6"),
    (["--checkpoint-every", "0"], "--checkpoint-every 0 is not allowed; use an integer from 1 to"),
    (["--max-consecutive-bad", "0"], "--max-consecutive-bad 0 is not allowed"),
    (["--nonfinite", "ignore"], "argument --nonfinite: invalid choice: 'ignore'"),
    (["--recovery", "retry"], "argument --recovery: invalid choice: 'retry'"),
    (["--clip-norm", "-2"], "--clip-norm -2.0 is not allowed"),
    (["--global-clip-norm", "nan"], "--global-clip-norm nan is not allowed"),
    (["--resume"], "--resume needs --run-name NAME"),
    # data and centres files
    (["--dataset", "file", "--data", "{missing.csv}"], "data file '{missing.csv}' does not exist"),
    (["--dataset", "file", "--data", "{empty.csv}"], "is empty"),
    (["--dataset", "file", "--data", "{malformed.csv}"], "line 3 is not numeric"),
    (["--dataset", "file", "--data", "{nan_row.csv}"], "row(s) with NaN or Inf"),
    (["--dataset", "file", "--data", "{inf_row.csv}"], "row(s) with NaN or Inf"),
    (["--dataset", "file", "--data", "{three_columns.csv}"], "has shape (2, 3); expected (N, 2)"),
    (["--dataset", "file", "--data", "{flat.npy}"], "expected (N, 2)"),
    (
        ["--dataset", "file", "--data", "{good.csv}", "--centers", "{centres_three_columns.csv}"],
        "centres file '{centres_three_columns.csv}' has shape (2, 3)",
    ),
    (["--dataset", "file", "--data", "{good.csv}", "--centers", "{missing.csv}"], "does not exist"),
    # results folders and checkpoints
    (["--results-dir", "{good.csv}/below"], "cannot be written"),
    (["--run-name", "absent", "--resume"], "holds no checkpoint to resume"),
    ([*SAME_AS_GOOD, "--layers", "2"], "holds a run with other settings (--layers 1 → 2)"),
    ([*SAME_AS_GOOD, "--g-lr", "0.01"], "holds a run with other settings (--g-lr 0.002 → 0.01)"),
    ([*SAME_AS_GOOD, "--steps", "2"], "has trained 2 steps already; give --steps above 2"),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(argv) for argv, _ in BAD_INPUTS])
def test_bad_input_is_refused_and_the_earlier_run_is_untouched(argv, message, good_run, data_files, capsys):
    results, before = good_run

    def fill(text):
        for name, path in data_files.items():
            text = text.replace("{" + name + "}", path)
        return text

    argv = [fill(arg) for arg in argv]
    if "--results-dir" not in argv:
        argv += ["--results-dir", results]
    if "--run-name" not in argv and argv != ["--resume", "--results-dir", results]:
        argv += ["--run-name", "new"]
    try:
        status = cli.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("qgan-train: error: "), err
    assert fill(message) in err, err
    assert digest(os.path.join(results, "good")) == before
    assert sorted(os.listdir(results)) == ["good"]


@pytest.mark.slow
def test_a_corrupt_checkpoint_is_a_clear_error_that_changes_nothing(good_run, tmp_path, capsys):
    results, _ = good_run
    copy = tmp_path / "copy"
    shutil.copytree(os.path.join(results, "good"), copy / "good")
    indexes = [name for name in os.listdir(copy / "good" / "checkpoints") if name.endswith(".index")]
    assert len(indexes) == 2
    for index in indexes:
        (copy / "good" / "checkpoints" / index).write_bytes(b"not a checkpoint")
    before = digest(copy / "good")
    status = cli.main([*SAME_AS_GOOD, "--results-dir", str(copy), "--steps", "4"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert "checkpoints can be restored" in err
    assert digest(copy / "good") == before


def test_the_bad_input_table_has_at_least_twenty_entries():
    assert len(BAD_INPUTS) >= 20


class Faults(keras.callbacks.Callback):
    """Writes NaN into a critic weight at one step and spikes the critic's learning rate at another."""

    def __init__(self, nan_at, spike_at, spike_steps, spike_rate):
        super().__init__()
        self.nan_at, self.spike_at, self.spike_steps, self.spike_rate = (
            nan_at,
            spike_at,
            spike_steps,
            spike_rate,
        )
        self.count = 0
        self.rate = None

    def on_train_batch_begin(self, batch, logs=None):
        self.count += 1
        optimizer = self.model.d_optimizer
        if self.count == self.nan_at:
            kernel = self.model.critic.trainable_variables[0]
            kernel.assign(tf.fill(kernel.shape, float("nan")))
        if self.count == self.spike_at:
            self.rate = float(optimizer.learning_rate.numpy())
            optimizer.learning_rate.assign(self.spike_rate)
        if self.count == self.spike_at + self.spike_steps:
            optimizer.learning_rate.assign(min(self.rate, float(optimizer.learning_rate.numpy())))


@pytest.mark.slow
def test_injected_faults_are_survived_and_counted(tmp_path, monkeypatch):
    import qgan.training.train

    poisoned_steps = {10, 20, 30}
    original = qgan.training.train.real_dataset

    def poisoned_dataset(target, config, start_step=0):
        dataset = original(target, config, start_step)
        steps = tf.data.Dataset.range(start_step, config.steps)

        def poison(step, batch):
            bad = tf.reduce_any(tf.equal(step, tf.constant(sorted(poisoned_steps), tf.int64)))
            values = tf.where(tf.equal(step % 2, 0), float("nan"), float("inf"))
            return tf.where(bad, tf.fill(tf.shape(batch), values), batch)

        return tf.data.Dataset.zip((steps, dataset)).map(poison)

    monkeypatch.setattr(qgan.training.train, "real_dataset", poisoned_dataset)
    config = TrainConfig(
        results_dir=str(tmp_path),
        run_name="faults",
        steps=120,
        eval_every=20,
        max_consecutive_bad=4,
        **TINY,
    )
    faults = Faults(nan_at=50, spike_at=80, spike_steps=5, spike_rate=1e6)
    result = train(config, log=lambda line: None, callbacks=[faults])
    rows = metric_rows(result.run_dir)
    by_step = {int(row["step"]): row for row in rows}
    assert sorted(by_step) == [20, 40, 60, 80, 100, 120]
    # NaN/Inf batches: each of the three makes both critic steps of that iteration non-finite
    assert int(by_step[40]["d_nonfinite_loss_steps"]) == 2 * len(poisoned_steps)
    # the NaN weight: bad steps in a row until a rollback to the last healthy snapshot
    assert int(by_step[40]["d_recoveries"]) == 0 and int(by_step[60]["d_recoveries"]) >= 1
    # the learning-rate spike (steps 80-84) shows as large critic gradients and further rollbacks
    assert int(by_step[100]["d_large_grads"]) > int(by_step[80]["d_large_grads"])
    assert int(by_step[100]["d_recoveries"]) > int(by_step[80]["d_recoveries"])
    for variable in [*result_weights(result.run_dir)]:
        assert np.all(np.isfinite(variable))
    assert np.all(np.isfinite(np.load(os.path.join(result.run_dir, "samples.npy"))))


def result_weights(run_dir):
    return [weight.numpy() for weight in load_run(run_dir).weights] + load_critic(run_dir)


class CopyAfter(keras.callbacks.Callback):
    """Copies the run folder after training step `step`: what a crash at that moment leaves behind."""

    def __init__(self, step, run_dir, destination):
        super().__init__()
        self.step, self.run_dir, self.destination = step, run_dir, destination
        self.count = 0

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1  # batch indices restart with every epoch, so it counts
        if self.count == self.step:
            shutil.copytree(self.run_dir, self.destination)


@pytest.mark.slow
def test_resume_between_evaluations_is_exact_under_xla_with_a_decaying_schedule(tmp_path):
    # checkpoints every 3 steps, evaluations every 4: the running means of steps 1-3 live in the
    # checkpoint at step 3, so the resumed run's row at step 4 averages steps 1-4 as the whole run's.
    # Exact to the bit: the same compiled step on the same restored state, the guards' branches
    # included (their fast and general branches round differently). The broken run is the whole
    # run's folder as it stood after step 5 (a crashed or killed run leaves that; the killed-run
    # test above kills a process), resumed under another name
    config = dict(TINY, jit_compile=True, n_critic=1, steps=8, eval_every=4, checkpoint_every=3)
    config.update(lr_schedule="cosine", lr_schedule_players="both")
    snapshot = CopyAfter(step=5, run_dir=str(tmp_path / "whole"), destination=str(tmp_path / "broken"))
    whole = train(
        TrainConfig(results_dir=str(tmp_path), run_name="whole", **config),
        log=lambda line: None,
        callbacks=[snapshot],
    )
    assert [int(row["step"]) for row in metric_rows(str(tmp_path / "broken"))] == [4]
    broken = TrainConfig(results_dir=str(tmp_path), run_name="broken", **config)
    resumed = train(broken, log=lambda line: None)
    assert resumed.resumed_from == 3
    assert [row["step"] for row in resumed.metrics] == [row["step"] for row in whole.metrics] == [4, 8]
    for resumed_row, whole_row in zip(resumed.metrics, whole.metrics):
        for key, value in whole_row.items():
            if key != "elapsed_s":
                assert resumed_row[key] == value, (whole_row["step"], key)
    for resumed_weight, whole_weight in zip(result_weights(resumed.run_dir), result_weights(whole.run_dir)):
        np.testing.assert_array_equal(resumed_weight, whole_weight)
