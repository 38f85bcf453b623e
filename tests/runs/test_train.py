"""End-to-end runs of train() and of the script in a temporary folder."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from qgan.evaluation.coverage import mode_coverage
from qgan.evaluation.targets import ring
from qgan.training.config import TrainConfig
from qgan.training.run_folder import METRIC_COLUMNS, PLOT_FILES, read_metrics
from qgan.training.train import train

TINY = dict(layers=1, cutoff=8, batch_size=8, n_critic=2, steps=4, eval_every=2, eval_samples=100)


@pytest.mark.slow
def test_steps_not_a_multiple_of_eval_every_still_end_at_steps_on_the_sf_engine(tmp_path):
    config = TrainConfig(results_dir=str(tmp_path), run_name="odd", **(TINY | dict(steps=3, engine="sf")))
    result = train(config, log=lambda line: None)
    assert [row["step"] for row in result.metrics] == [2, 3]
    assert json.loads((tmp_path / "odd" / "config.json").read_text())["engine"] == "sf"


HERALDED = dict(
    readout="heralded",
    cutoff=6,
    layers=1,
    batch_size=16,
    n_critic=2,
    steps=300,
    eval_every=50,
    eval_samples=500,
    g_lr=0.01,
    d_lr=0.003,
    latent_scale=0.2,
    ancilla_offset=1.2,
    marginal_critic=True,
)


@pytest.mark.slow
def test_heralded_run_under_xla_lowers_the_wasserstein_estimate_and_uses_many_outcomes(tmp_path):
    lines = []
    config = TrainConfig(results_dir=str(tmp_path), run_name="heralded", **HERALDED)
    assert config.jit_compile
    result = train(config, log=lines.append)
    assert "heralded on 1 pnr ancilla (6 outcomes, xp)" in lines[0]
    wasserstein = [row["wasserstein"] for row in result.metrics]
    # the estimate rises while the critic learns, then falls as the generator moves towards the ring
    assert max(wasserstein) > 1.0 and wasserstein[-1] < 0.75 * max(wasserstein)
    assert all(row["outcome_entropy"] > 1.0 for row in result.metrics)
    assert result.metrics[-1]["eval_trace_min"] > 0.9
    assert all(row["d_skipped_steps"] == 0 and row["g_skipped_steps"] == 0 for row in result.metrics)
    run_dir = tmp_path / "heralded"
    outcomes = np.load(run_dir / "outcomes.npy")
    assert outcomes.shape == (500,) and len(np.unique(outcomes)) >= 3
    assert {"outcomes.png", "outcomes.csv"} <= set(os.listdir(run_dir))
    table = (run_dir / "outcomes.csv").read_text().splitlines()
    assert table[0] == "step,outcome,frequency,mean_x,mean_y,spread"
    last = [row.split(",") for row in table[1:] if row.startswith("300,")]
    assert sum(float(row[2]) for row in last) == pytest.approx(1.0)
    assert sorted(int(row[1]) for row in last) == sorted(np.unique(outcomes).tolist())
    samples = np.load(run_dir / "samples.npy")
    for row in last:
        chosen = samples[outcomes == int(row[1])]
        np.testing.assert_allclose([float(row[3]), float(row[4])], chosen.mean(axis=0), atol=1e-5)


@pytest.mark.slow
def test_classical_mixture_trains_through_the_same_compiled_loop(tmp_path):
    config = TrainConfig(
        results_dir=str(tmp_path),
        run_name="mixture",
        generator="classical-mixture",
        # the circuit's own knobs do not apply to the classical mixture
        **{
            key: value
            for key, value in HERALDED.items()
            if key not in ("latent_scale", "ancilla_offset", "steps")
        },
        steps=20,
    )
    result = train(config, log=lambda line: None)
    assert [row["step"] for row in result.metrics] == [20]
    assert result.metrics[-1]["eval_trace_min"] == 1.0
    assert np.isfinite(result.metrics[-1]["outcome_entropy"])
    assert np.load(tmp_path / "mixture" / "outcomes.npy").max() < 6


def test_lr_schedule_players_choose_which_optimizers_decay():
    from qgan.training.builders import build_gan, decaying_rates

    gan = build_gan(TrainConfig(generator="classical", jit_compile=False))
    assert decaying_rates(gan, TrainConfig(g_lr=2e-3, d_lr=3e-3, lr_schedule_players="both")) == [
        (gan.g_optimizer, 2e-3, gan.generator_guard),
        (gan.d_optimizer, 3e-3, gan.critic_guard),
    ]
    assert decaying_rates(gan, TrainConfig()) == [(gan.g_optimizer, 2e-3, gan.generator_guard)]


@pytest.mark.slow
def test_nonfinite_raise_under_xla_stops_with_the_guards_names_and_keeps_the_folder(tmp_path):
    import keras

    from qgan.guard import NonFiniteError

    class PoisonCritic(keras.callbacks.Callback):
        count = 0

        def on_train_batch_begin(self, batch, logs=None):
            self.count += 1  # batch indices restart with every epoch (evaluation interval)
            if self.count == 4:
                kernel = self.model.critic.trainable_variables[0]
                kernel.assign(tf.fill(kernel.shape, float("nan")))

    config = TrainConfig(
        generator="classical",
        nonfinite="raise",
        steps=6,
        eval_every=2,
        eval_samples=50,
        batch_size=8,
        n_critic=1,
        results_dir=str(tmp_path),
        run_name="raise",
    )
    assert config.jit_compile
    with pytest.raises(NonFiniteError, match=r"^critic_guard: non-finite values in: loss, dense_0/kernel"):
        train(config, log=lambda line: None, callbacks=[PoisonCritic()])
    # the evaluations before the poisoned step are kept
    assert [row["step"] for row in read_metrics(str(tmp_path / "raise"), 6)] == [2]


class PoisonCriticFrom(__import__("keras").callbacks.Callback):
    """From step `first` on (1-based), the critic's first kernel is NaN during each step, restored after."""

    def __init__(self, first):
        super().__init__()
        self.first = first
        self.saved = None
        self.count = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.count += 1
        if self.count >= self.first:
            kernel = self.model.critic.trainable_variables[0]
            self.saved = kernel.numpy()
            kernel.assign(tf.fill(kernel.shape, float("nan")))

    def on_train_batch_end(self, batch, logs=None):
        if self.saved is not None:
            self.model.critic.trainable_variables[0].assign(self.saved)
            self.saved = None


@pytest.mark.slow
def test_a_guard_stop_is_reported_exits_3_and_resuming_clears_it(tmp_path, monkeypatch, capsys):
    import functools

    import qgan.training.train
    from qgan.training.cli import EXIT_GUARD_STOP, main

    flags = [
        *("--generator", "classical", "--recovery", "stop", "--max-consecutive-bad", "2"),
        *("--steps", "6", "--eval-every", "2", "--eval-samples", "50", "--batch-size", "8"),
        *("--n-critic", "1", "--results-dir", str(tmp_path), "--run-name", "stopped"),
    ]
    unpoisoned = qgan.training.train.train
    monkeypatch.setattr(
        qgan.training.train, "train", functools.partial(unpoisoned, callbacks=[PoisonCriticFrom(3)])
    )
    assert EXIT_GUARD_STOP == 3
    assert main(flags) == EXIT_GUARD_STOP  # steps 3 and 4 are bad: the stop comes at step 4
    out = capsys.readouterr().out
    assert "stopped by critic_guard at step 4" in out
    assert "--run-name stopped --resume" in out
    final = json.loads((tmp_path / "stopped" / "coverage.json").read_text())
    assert (final["step"], final["status"], final["stopped_by"]) == (4, "guard-stop", "critic_guard")
    assert [row["step"] for row in read_metrics(str(tmp_path / "stopped"), 6)] == [2, 4]

    monkeypatch.setattr(qgan.training.train, "train", unpoisoned)
    assert main([*flags, "--resume"]) == 0  # the saved stop is cleared, so the run trains to its end
    out = capsys.readouterr().out
    assert "critic_guard had stopped this run at step 4; resuming clears the stop" in out
    assert "done at step 6" in out
    final = json.loads((tmp_path / "stopped" / "coverage.json").read_text())
    assert (final["step"], final["status"], final["stopped_by"]) == (6, "completed", None)


@pytest.mark.slow
def test_train_writes_an_honest_results_folder_with_tensorboard_and_keras_logs(tmp_path):
    # one run on the default engine (XLA) checks the folder, the log lines, TensorBoard and Keras' logs
    import csv

    import keras
    from tensorboard.backend.event_processing import event_accumulator

    lines = []
    config = TrainConfig(results_dir=str(tmp_path), run_name="tiny", **(TINY | dict(steps=5)))
    assert config.tensorboard and config.jit_compile
    csv_log = tmp_path / "epochs.csv"
    result = train(config, log=lines.append, callbacks=[keras.callbacks.CSVLogger(str(csv_log))])
    run_dir = tmp_path / "tiny"
    assert result.run_dir == str(run_dir)
    expected = {
        "config.json",
        "metrics.csv",
        "coverage.json",
        "samples.npy",
        "generator.json",
        "generator.weights.h5",
        "critic.weights.h5",
        *PLOT_FILES,
    }
    assert expected <= set(os.listdir(run_dir))
    assert not [name for name in os.listdir(run_dir) if name.endswith(".tmp")]
    assert json.loads((run_dir / "config.json").read_text()) == config.to_dict()

    csv_rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert csv_rows[0].split(",") == list(METRIC_COLUMNS)
    assert [row.split(",")[0] for row in csv_rows[1:]] == ["2", "4", "5"]
    rows = result.metrics
    assert [row["step"] for row in rows] == [2, 4, 5]  # one epoch per evaluation, the last one short

    final = json.loads((run_dir / "coverage.json").read_text())
    samples = np.load(run_dir / "samples.npy")
    assert samples.shape == (100, 2)
    target = ring()
    recomputed = mode_coverage(samples, target.centers, target.std)
    assert final["coverage"] == recomputed.as_dict()
    assert final["step"] == 5
    assert 0.9 < final["trace_min"] <= final["trace_mean"] <= 1.0 + 1e-6
    assert rows[-1]["modes_captured"] == recomputed.modes_captured

    assert lines[0].startswith("qgan: training on ring")
    assert lines[1].startswith("qgan: step 1 done ") and lines[1].endswith(
        " s after the run began (compilation included)"
    )
    assert sum(line.startswith("step") for line in lines) == 3
    assert lines[-1].startswith("done at step 5 in") and "modes captured" in lines[-1]

    def read(folder):
        reader = event_accumulator.EventAccumulator(
            str(run_dir / "tensorboard" / folder), size_guidance={"tensors": 0}
        )
        reader.Reload()
        return {
            tag: [event.step for event in reader.Tensors(tag)] for tag in reader.Tags()["tensors"]
        }, reader

    scalars, reader = read("train")
    for name in (
        "d_loss", "g_loss", "wasserstein", "gp", "d_grad_norm", "g_grad_norm", "trace_mean", "trace_min",
        "critic_guard_skipped_steps", "generator_guard_recoveries", "modes_captured",
        "high_quality_fraction", "kl_uniform", "eval_trace_mean", "offset_median", "w1", "w1_ratio",
    ):  # fmt: skip
        assert scalars[f"epoch_{name}"] == [0, 1, 2], name
    fidelity = ("offset_median", "w1", "w1_ratio")
    for name in ("d_loss", "wasserstein", "high_quality_fraction", "kl_uniform", "eval_trace_min", *fidelity):
        logged = [float(tf.make_ndarray(event.tensor_proto)) for event in reader.Tensors(f"epoch_{name}")]
        np.testing.assert_allclose(logged, [row[name] for row in rows], rtol=1e-6, err_msg=name)

    images, reader = read("evaluation")
    assert images == {"samples": [0, 1, 2]}
    for event in reader.Tensors("samples"):
        width, height, png = tf.make_ndarray(event.tensor_proto)
        assert png.startswith(b"\x89PNG") and int(width) > 400 and int(height) > 400

    with open(csv_log, newline="") as handle:
        epochs = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in epochs] == [0, 1, 2]
    assert [int(row["modes_captured"]) for row in epochs] == [row["modes_captured"] for row in rows]
    # the fidelity metrics land in metrics.csv and coverage.json too
    with open(run_dir / "metrics.csv", newline="") as handle:
        written = list(csv.DictReader(handle))
    np.testing.assert_allclose([float(row["w1_ratio"]) for row in written], [row["w1_ratio"] for row in rows])
    assert final["fidelity"]["w1_ratio"] == pytest.approx(rows[-1]["w1_ratio"])
    assert 1 <= len(final["fidelity"]["offsets"]) <= 8 and final["fidelity"]["w1_reference"] > 0
