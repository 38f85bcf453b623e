"""train(config): builds the GAN, trains it with Keras `fit`, evaluates coverage and writes the run folder."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from qgan import plots, targets
from qgan.config import ConfigError, TrainConfig
from qgan.coverage import CoverageReport, mode_coverage
from qgan.critic import build_critic
from qgan.gan import CoordinateGAN
from qgan.generator import QuantumGenerator
from qgan.guard import GuardMonitor

EVAL_CHUNK = 250
REAL_POOL_LIMIT = 1_000_000
METRIC_COLUMNS = (
    "step",
    "elapsed_s",
    "d_loss",
    "g_loss",
    "wasserstein",
    "gp",
    "d_grad_norm",
    "g_grad_norm",
    "trace_mean",
    "trace_min",
    "eval_trace_mean",
    "eval_trace_min",
    "modes_captured",
    "high_quality_fraction",
    "kl_uniform",
    "d_skipped_steps",
    "g_skipped_steps",
    "d_nonfinite_loss_steps",
    "g_nonfinite_loss_steps",
    "d_nonfinite_grads",
    "g_nonfinite_grads",
    "d_none_grads",
    "g_none_grads",
    "d_large_grads",
    "g_large_grads",
    "d_recoveries",
    "g_recoveries",
)
PLOT_FILES = ("samples.png", "mode_counts.png", "coverage.png", "training.png")


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        run_dir: the results folder of the run.
        coverage: final mode coverage on fresh samples (None without centres).
        metrics: one dict per evaluation, keys METRIC_COLUMNS.
        samples: the final evaluation samples, (eval_samples, 2).
        trace: the Fock-space trace of each final sample.
        elapsed_seconds: wall time of the run.
    """

    run_dir: str
    coverage: CoverageReport | None
    metrics: list
    samples: np.ndarray
    trace: np.ndarray
    elapsed_seconds: float


def make_target(config: TrainConfig) -> targets.Target:
    """The target distribution a config asks for (raises targets.DataError for unusable files)."""
    if config.dataset == "ring":
        return targets.ring()
    if config.dataset == "grid":
        return targets.grid()
    return targets.from_file(config.data, config.centers, config.std)


def write_atomic(path: str, text: str) -> None:
    """Writes text to path through a temporary file and a rename, so no reader sees half a file."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def prepare_run_dir(config: TrainConfig) -> str:
    """Creates results_dir/run_name; refuses an existing non-empty folder or one that cannot be written."""
    run_name = config.run_name or f"{config.dataset}-{config.engine}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = os.path.join(config.results_dir, run_name)
    if os.path.isdir(run_dir) and os.listdir(run_dir):
        raise ConfigError(
            f"--run-name {run_name!r}: {run_dir} already holds a run; choose another --run-name"
        )
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, ".write-test")
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ConfigError(
            f"--results-dir {config.results_dir!r} cannot be written ({error.strerror or error}); "
            "choose a writable folder"
        ) from None
    return run_dir


def build_gan(config: TrainConfig, run_eagerly: bool | None = None) -> CoordinateGAN:
    """The compiled CoordinateGAN described by a config.

    Args:
        config: the TrainConfig.
        run_eagerly: force eager steps; by default only engines that cannot run as graphs do.
    """
    generator = QuantumGenerator(
        modes=config.modes,
        layers=config.layers,
        cutoff=config.cutoff,
        engine=config.engine,
        latent_scale=config.latent_scale,
        max_squeeze=config.max_squeeze,
        max_displacement=config.max_displacement,
        max_kerr=config.max_kerr,
        init_std=config.init_std,
        seed=config.seed,
        jit_compile=config.jit_compile,
        name="quantum_generator",
    )
    if run_eagerly is None:
        run_eagerly = not generator.engine.supports_graph
    critic = build_critic(config.critic_units, seed=config.seed + 100)
    gan = CoordinateGAN(
        generator,
        critic,
        n_critic=config.n_critic,
        gp_weight=config.gp_weight,
        trace_penalty=config.trace_penalty,
        guard_options=config.guard_options(),
        seed=config.seed,
    )
    gan.compile(
        g_optimizer=keras.optimizers.Adam(config.g_lr, beta_1=config.g_beta1, beta_2=config.g_beta2),
        d_optimizer=keras.optimizers.Adam(config.d_lr, beta_1=config.d_beta1, beta_2=config.d_beta2),
        run_eagerly=run_eagerly,
        jit_compile=config.jit_compile and not run_eagerly,
    )
    return gan


def real_dataset(target: targets.Target, config: TrainConfig) -> tf.data.Dataset:
    """Endless batches of n_critic·batch_size real points (fresh mixture draws, or the file shuffled)."""
    needed = config.steps * config.n_critic * config.batch_size
    pool = (
        target.sample(min(needed, REAL_POOL_LIMIT), seed=config.seed)
        if target.points is None
        else target.points
    )
    dataset = tf.data.Dataset.from_tensor_slices(pool.astype(np.float32))
    dataset = dataset.shuffle(min(len(pool), 100_000), seed=config.seed).repeat()
    return dataset.batch(config.n_critic * config.batch_size, drop_remainder=True).prefetch(2)


def evaluate(generator, target, num_samples: int, seed) -> tuple:
    """Fresh samples, their traces and their coverage (None when the target has no centres)."""
    samples, trace = generator.generate(num_samples, chunk_size=min(EVAL_CHUNK, num_samples), seed=seed)
    coverage = None
    if target.centers is not None:
        coverage = mode_coverage(samples, target.centers, target.std)
    return samples, trace, coverage


def metrics_csv(rows) -> str:
    """Metric rows as CSV text with the METRIC_COLUMNS header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in METRIC_COLUMNS})
    return buffer.getvalue()


def _format_progress(row, config, num_modes) -> str:
    parts = [f"step {row['step']:>6d}/{config.steps}"]
    parts.append(f"d_loss {row['d_loss']:+.4f}  g_loss {row['g_loss']:+.4f}  W {row['wasserstein']:+.4f}")
    if row["modes_captured"] is not None:
        parts.append(
            f"modes {row['modes_captured']}/{num_modes}  HQ {100 * row['high_quality_fraction']:5.1f}%  "
            f"KL {row['kl_uniform']:.3f}"
        )
    parts.append(f"trace {row['eval_trace_mean']:.4f} (min {row['eval_trace_min']:.4f})")
    parts.append(f"skipped d{row['d_skipped_steps']} g{row['g_skipped_steps']}")
    parts.append(f"[{row['elapsed_s']:.0f} s]")
    return "  ".join(parts)


class Evaluator(keras.callbacks.Callback):
    """Counts generator steps, stops `fit` at config.steps and evaluates at the end of every epoch."""

    def __init__(self, config, target, run_dir, started, log):
        super().__init__()
        self.config = config
        self.target = target
        self.run_dir = run_dir
        self.started = started
        self.log = log
        self.step = 0
        self.rows = []
        self.last = None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step >= self.config.steps:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        samples, trace, coverage = evaluate(
            self.model.generator,
            self.target,
            self.config.eval_samples,
            seed=[self.config.seed, self.step],
        )
        row = {key: None for key in METRIC_COLUMNS}
        row["step"] = self.step
        row["elapsed_s"] = round(time.time() - self.started, 2)
        for key in METRIC_COLUMNS:
            if key in logs:
                value = float(logs[key])
                row[key] = int(value) if key.endswith(("_steps", "_grads", "_recoveries")) else value
        row["eval_trace_mean"] = float(np.mean(trace))
        row["eval_trace_min"] = float(np.min(trace))
        if coverage is not None:
            row["modes_captured"] = coverage.modes_captured
            row["high_quality_fraction"] = coverage.high_quality_fraction
            row["kl_uniform"] = coverage.kl_uniform
        self.rows.append(row)
        self.last = (samples, trace, coverage)
        write_atomic(os.path.join(self.run_dir, "metrics.csv"), metrics_csv(self.rows))
        num_modes = len(self.target.centers) if self.target.centers is not None else 0
        self.log(_format_progress(row, self.config, num_modes))


def _draw_plots(run_dir, config, target, rows, samples, coverage) -> None:
    label = (
        f"{target.name}, {config.engine} engine, {config.modes} modes, "
        f"{config.layers} layers, cutoff {config.cutoff}"
    )
    step = rows[-1]["step"]
    if coverage is not None:
        title = (
            f"step {step}: {coverage.modes_captured}/{coverage.num_modes} modes, "
            f"{100 * coverage.high_quality_fraction:.1f}% high quality, KL {coverage.kl_uniform:.3f}\n{label}"
        )
    else:
        title = f"step {step}\n{label}"
    plots.plot_samples(
        os.path.join(run_dir, "samples.png"),
        samples,
        target_points=target.sample(len(samples), seed=config.seed + 1),
        centers=target.centers,
        std=target.std,
        counts=None if coverage is None else coverage.counts,
        title=title,
    )
    if coverage is not None:
        plots.plot_mode_counts(
            os.path.join(run_dir, "mode_counts.png"),
            coverage.counts,
            coverage.num_samples,
            title=title,
        )
        plots.plot_coverage(os.path.join(run_dir, "coverage.png"), rows, coverage.num_modes, title=label)
    plots.plot_training(os.path.join(run_dir, "training.png"), rows, title=label)


def train(config: TrainConfig, log=print) -> TrainResult:
    """Trains a coordinate quantum GAN as the config says and writes its results folder.

    The folder results_dir/run_name gets config.json at the start, metrics.csv after every
    evaluation, and at the end coverage.json, samples.npy, the weights and the plots.

    Args:
        config: the validated TrainConfig.
        log: where progress lines go (print by default).

    Returns:
        The TrainResult.

    Raises:
        targets.DataError: a data or centres file that cannot be used (nothing is written then).
        ConfigError: a run folder that exists already or cannot be written.
    """
    started = time.time()
    target = make_target(config)
    run_dir = prepare_run_dir(config)
    write_atomic(os.path.join(run_dir, "config.json"), config.to_json() + "\n")
    keras.utils.set_random_seed(config.seed)
    gan = build_gan(config)
    log(
        f"qgan: training on {target.name} with the {config.engine} engine "
        f"({config.modes} modes, {config.layers} layers, cutoff {config.cutoff}, batch {config.batch_size}, "
        f"{config.steps} steps) -> {run_dir}"
    )
    evaluator = Evaluator(config, target, run_dir, started, log)
    gan.fit(
        real_dataset(target, config),
        epochs=math.ceil(config.steps / config.eval_every),
        steps_per_epoch=config.eval_every,
        callbacks=[GuardMonitor([gan.critic_guard, gan.generator_guard]), evaluator],
        verbose=0,
        shuffle=False,
    )
    samples, trace, coverage = evaluator.last
    rows = evaluator.rows
    final = {
        "step": rows[-1]["step"],
        "eval_samples": len(samples),
        "trace_mean": rows[-1]["eval_trace_mean"],
        "trace_min": rows[-1]["eval_trace_min"],
        "coverage": None if coverage is None else coverage.as_dict(),
        "elapsed_s": round(time.time() - started, 2),
    }
    write_atomic(os.path.join(run_dir, "coverage.json"), json.dumps(final, indent=2) + "\n")
    np.save(os.path.join(run_dir, "samples.npy"), samples)
    np.savez(
        os.path.join(run_dir, "generator.weights.npz"),
        **{variable.path.replace("/", "."): variable.numpy() for variable in gan.generator.weights},
    )
    gan.critic.save_weights(os.path.join(run_dir, "critic.weights.h5"))
    _draw_plots(run_dir, config, target, rows, samples, coverage)
    elapsed = time.time() - started
    if coverage is not None:
        log(
            f"done in {elapsed:.0f} s: {coverage.modes_captured}/{coverage.num_modes} modes captured, "
            f"{100 * coverage.high_quality_fraction:.1f}% high-quality samples, "
            f"KL {coverage.kl_uniform:.3f}, "
            f"trace mean {final['trace_mean']:.4f} (min {final['trace_min']:.4f}); plots in {run_dir}/"
        )
    else:
        log(f"done in {elapsed:.0f} s: no centres given, so no coverage; plots in {run_dir}/")
    return TrainResult(run_dir, coverage, rows, samples, trace, elapsed)
