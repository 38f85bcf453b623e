"""train(config): builds the GAN, trains it with Keras `fit`, evaluates coverage and writes the run folder."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from qgan import plots, targets
from qgan.classical_generator import ClassicalGenerator, ClassicalMixtureGenerator, matching_hidden_units
from qgan.config import ConfigError, TrainConfig, flag_name
from qgan.coverage import CoverageReport, mode_coverage
from qgan.critic import build_critic
from qgan.files import save_atomic, write_atomic
from qgan.gan import CoordinateGAN
from qgan.generator import QuantumGenerator
from qgan.guard import GuardMonitor
from qgan.schedules import LearningRateDecay

EVAL_CHUNK = 250
CHECKPOINTS_KEPT = 3
PROGRAM = "scripts/train_coordinate_quantum_gan.py"
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
    "outcome_entropy",
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
OUTCOME_COLUMNS = ("step", "outcome", "frequency", "mean_x", "mean_y", "spread")


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
        interrupted: the run stopped on Ctrl-C (SIGINT) before its last step.
        resumed_from: the step the run continued from (0 for a fresh run).
    """

    run_dir: str
    coverage: CoverageReport | None
    metrics: list
    samples: np.ndarray
    trace: np.ndarray
    elapsed_seconds: float
    interrupted: bool = False
    resumed_from: int = 0


def make_target(config: TrainConfig) -> targets.Target:
    """The target distribution a config asks for (raises targets.DataError for unusable files)."""
    if config.dataset == "ring":
        return targets.ring()
    if config.dataset == "grid":
        return targets.grid()
    return targets.from_file(config.data, config.centers, config.std)


def prepare_run_dir(config: TrainConfig) -> tuple[str, bool]:
    """Creates or reopens results_dir/run_name.

    A folder holding a run with checkpoints is resumed when its saved config.json matches
    this config in everything but the step budget. Any other non-empty folder is refused, as
    is a folder that cannot be written. Nothing is written before every check has passed.

    Returns:
        (run folder, whether to resume from its last checkpoint).

    Raises:
        ConfigError: naming the flag, the value and what is allowed.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_name = config.run_name or f"{config.dataset}-{config.generator_label()}-{stamp}"
    run_dir = os.path.join(config.results_dir, run_name)
    resumable = os.path.isfile(os.path.join(run_dir, "checkpoints", "checkpoint"))
    if resumable:
        saved = _read_saved_config(run_dir, run_name)
        conflicts = config.resume_conflicts(saved)
        if conflicts:
            details = ", ".join(
                f"{flag_name(key)} {saved.get(key)!r} → {getattr(config, key)!r}" for key in conflicts
            )
            raise ConfigError(
                f"--run-name {run_name!r} holds a run with other settings ({details}); only --steps may "
                "change when resuming: repeat the saved settings or choose another --run-name"
            )
    elif config.resume:
        raise ConfigError(
            f"--resume: {run_dir} holds no checkpoint to resume; train it first without --resume"
        )
    elif os.path.isdir(run_dir) and os.listdir(run_dir):
        raise ConfigError(
            f"--run-name {run_name!r}: {run_dir} already holds files but no checkpoint; "
            "choose another --run-name"
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
    return run_dir, resumable


def _read_saved_config(run_dir: str, run_name: str) -> dict:
    try:
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"--run-name {run_name!r}: its config.json cannot be read ({error}); choose another --run-name"
        ) from None
    if not isinstance(saved, dict):
        raise ConfigError(
            f"--run-name {run_name!r}: its config.json is not a settings object; choose another --run-name"
        )
    return saved


def build_generator(config: TrainConfig):
    """The generator a config asks for: the quantum circuit, or the classical MLP of about its size."""
    quantum = QuantumGenerator(
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
        reupload=config.reupload,
        readout=config.readout,
        ancillas=config.ancillas,
        detector=config.detector,
        quadratures=config.quadratures,
        ancilla_offset=config.ancilla_offset,
        name="quantum_generator",
    )
    if config.generator == "quantum":
        return quantum
    if config.generator == "classical-mixture":
        outcomes = config.mixture_outcomes()
        hidden_units = matching_hidden_units(
            max(quantum.parameter_count() - outcomes, 1), config.modes + outcomes, 2
        )
        return ClassicalMixtureGenerator(
            latent_dim=config.modes,
            outcomes=outcomes,
            hidden_units=hidden_units,
            seed=config.seed,
            jit_compile=config.jit_compile,
            name="classical_mixture_generator",
        )
    hidden_units = matching_hidden_units(quantum.parameter_count(), config.modes, 2)
    return ClassicalGenerator(
        latent_dim=config.modes,
        hidden_units=hidden_units,
        seed=config.seed,
        jit_compile=config.jit_compile,
        name="classical_generator",
    )


def build_gan(config: TrainConfig, run_eagerly: bool | None = None) -> CoordinateGAN:
    """The compiled CoordinateGAN described by a config.

    Args:
        config: the TrainConfig.
        run_eagerly: force eager steps; by default only engines that cannot run as graphs do.
    """
    generator = build_generator(config)
    if run_eagerly is None:
        run_eagerly = not generator.supports_graph
    critic = build_critic(config.critic_units, seed=config.seed + 100)
    gan = CoordinateGAN(
        generator,
        critic,
        n_critic=config.n_critic,
        gp_weight=config.gp_weight,
        trace_penalty=config.trace_penalty,
        marginal_critic=config.marginal_critic,
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


def real_dataset(target: targets.Target, config: TrainConfig, start_step: int = 0) -> tf.data.Dataset:
    """The real batches of steps start_step … steps−1, each n_critic·batch_size points.

    Batch k is target.sample(…, seed=(seed, k)): a function of the step alone, so a resumed
    run sees exactly the batches the uninterrupted run would have seen.
    """
    size = config.n_critic * config.batch_size

    def batch(step):
        return target.sample(size, seed=(config.seed, int(step)))

    def load(step):
        points = tf.numpy_function(batch, [step], tf.float32)
        return tf.ensure_shape(points, (size, 2))

    steps = tf.data.Dataset.range(start_step, config.steps)
    return steps.map(load, num_parallel_calls=1, deterministic=True).prefetch(2)


def evaluate(generator, target, num_samples: int, seed) -> tuple:
    """Fresh samples, their traces, their outcomes and their coverage (None without centres)."""
    samples, trace, outcomes = generator.generate(
        num_samples, chunk_size=min(EVAL_CHUNK, num_samples), seed=seed, outcomes=True
    )
    coverage = None
    if target.centers is not None:
        coverage = mode_coverage(samples, target.centers, target.std)
    return samples, trace, outcomes, coverage


def outcome_rows(step: int, samples: np.ndarray, outcomes: np.ndarray) -> list:
    """Per drawn outcome of an evaluation: its frequency, its samples' mean and RMS spread about it."""
    rows = []
    for outcome in np.unique(outcomes):
        chosen = samples[outcomes == outcome]
        mean = chosen.mean(axis=0)
        spread = float(np.sqrt(np.mean(np.sum((chosen - mean) ** 2, axis=1))))
        rows.append(
            {
                "step": step,
                "outcome": int(outcome),
                "frequency": len(chosen) / len(samples),
                "mean_x": float(mean[0]),
                "mean_y": float(mean[1]),
                "spread": spread,
            }
        )
    return rows


def metrics_csv(rows, columns=METRIC_COLUMNS) -> str:
    """Metric rows as CSV text with the header `columns`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in columns})
    return buffer.getvalue()


def _format_progress(row, config, num_modes) -> str:
    parts = [f"step {row['step']:>6d}/{config.steps}"]
    parts.append(f"d_loss {row['d_loss']:+.4f}  g_loss {row['g_loss']:+.4f}  W {row['wasserstein']:+.4f}")
    if row["modes_captured"] is not None:
        parts.append(
            f"modes {row['modes_captured']}/{num_modes}  HQ {100 * row['high_quality_fraction']:5.1f}%  "
            f"KL {row['kl_uniform']:.3f}"
        )
    if row.get("outcome_entropy") is not None:
        parts.append(f"H {row['outcome_entropy']:.2f}")
    parts.append(f"trace {row['eval_trace_mean']:.4f} (min {row['eval_trace_min']:.4f})")
    parts.append(f"skipped d{row['d_skipped_steps']} g{row['g_skipped_steps']}")
    parts.append(f"[{row['elapsed_s']:.0f} s]")
    return "  ".join(parts)


def decaying_optimizers(gan: CoordinateGAN, config: TrainConfig) -> list:
    """The optimizers whose learning rate --lr-schedule decays (--lr-schedule-players)."""
    if config.lr_schedule_players == "generator":
        return [gan.g_optimizer]
    return [gan.g_optimizer, gan.d_optimizer]


def make_checkpoint(gan: CoordinateGAN, step: tf.Variable) -> tf.train.Checkpoint:
    """The whole training state: both players' weights and optimizers, guards, noise RNG, step."""
    guards = {
        f"{prefix}_{name}": variable
        for prefix, guard in (("critic_guard", gan.critic_guard), ("generator_guard", gan.generator_guard))
        for name, variable in guard.state_variables().items()
    }
    return tf.train.Checkpoint(
        generator=gan.generator,
        critic=gan.critic,
        g_optimizer=gan.g_optimizer,
        d_optimizer=gan.d_optimizer,
        noise_seed=gan.noise_seed.state,
        step=step,
        **guards,
    )


def read_metrics(run_dir: str, up_to_step: int, name="metrics.csv", columns=METRIC_COLUMNS) -> list:
    """The rows of a run's metrics.csv (or another table of `columns`) with step ≤ up_to_step, parsed."""
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            row = {key: None for key in columns}
            for key in columns:
                text = raw.get(key, "")
                if text not in ("", None):
                    row[key] = (
                        int(float(text)) if key in ("step", "outcome") or _is_count(key) else float(text)
                    )
            if row["step"] is not None and row["step"] <= up_to_step:
                rows.append(row)
    return rows


def _is_count(key: str) -> bool:
    return key == "modes_captured" or key.endswith(("_steps", "_grads", "_recoveries"))


class Interruption:
    """Turns Ctrl-C (SIGINT) into a request to stop after the current step, while active."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class TrainingLoop(keras.callbacks.Callback):
    """Counts generator steps; evaluates every eval_every steps, checkpoints every checkpoint_every.

    Both also happen at the last step. Ctrl-C stops training after the current step.
    """

    def __init__(self, config, target, run_dir, rows, step, manager, interruption, clock, log):
        super().__init__()
        self.config = config
        self.target = target
        self.run_dir = run_dir
        self.rows = rows
        self.step = step
        self.manager = manager
        self.interruption = interruption
        self.clock = clock
        self.log = log
        self.last = None
        self.last_logs = {}
        self.outcome_rows = (
            read_metrics(run_dir, rows[-1]["step"], "outcomes.csv", OUTCOME_COLUMNS) if rows else []
        )

    def on_train_batch_end(self, batch, logs=None):
        self.step.assign_add(1)
        self.last_logs = dict(logs or {})
        step = int(self.step.numpy())
        if step % self.config.eval_every == 0 or step == self.config.steps:
            self.evaluate(self.last_logs)
        if step % self.config.checkpoint_every == 0 or step == self.config.steps:
            self.save_checkpoint()
        if self.interruption.requested:
            self.model.stop_training = True

    def evaluate(self, logs) -> None:
        """Appends a metrics row (fresh samples, coverage, the logs since the last row) and prints it."""
        step = int(self.step.numpy())
        if self.rows and self.rows[-1]["step"] == step:
            return
        samples, trace, outcomes, coverage = evaluate(
            self.model.generator, self.target, self.config.eval_samples, seed=[self.config.seed, step]
        )
        row = {key: None for key in METRIC_COLUMNS}
        row["step"] = step
        row["elapsed_s"] = round(self.clock(), 2)
        for key in METRIC_COLUMNS:
            if key in logs:
                value = float(logs[key])
                row[key] = int(value) if _is_count(key) else value
        row["eval_trace_mean"] = float(np.mean(trace))
        row["eval_trace_min"] = float(np.min(trace))
        if coverage is not None:
            row["modes_captured"] = coverage.modes_captured
            row["high_quality_fraction"] = coverage.high_quality_fraction
            row["kl_uniform"] = coverage.kl_uniform
        self.rows.append(row)
        self.last = (samples, trace, outcomes, coverage)
        write_atomic(os.path.join(self.run_dir, "metrics.csv"), metrics_csv(self.rows))
        if self.model.generator.outcomes:
            self.outcome_rows += outcome_rows(step, samples, outcomes)
            write_atomic(
                os.path.join(self.run_dir, "outcomes.csv"), metrics_csv(self.outcome_rows, OUTCOME_COLUMNS)
            )
        for metric in self.model.metrics:
            metric.reset_state()
        num_modes = len(self.target.centers) if self.target.centers is not None else 0
        self.log(_format_progress(row, self.config, num_modes))

    def save_checkpoint(self) -> None:
        """Writes a checkpoint of the current step unless one exists already."""
        step = int(self.step.numpy())
        if self.manager.latest_checkpoint and self.manager.latest_checkpoint.endswith(f"-{step}"):
            return
        self.manager.save(checkpoint_number=step)


def _generator_description(config: TrainConfig, generator) -> str:
    if isinstance(generator, ClassicalGenerator):
        widths = "-".join(str(width) for width in (generator.latent_dim, *generator.hidden_units, 2))
        return f"classical MLP {widths} ({generator.parameter_count()} parameters)"
    if isinstance(generator, ClassicalMixtureGenerator):
        widths = "-".join(str(width) for width in (generator.continuous_dim, *generator.hidden_units, 2))
        return (
            f"classical mixture of {generator.outcomes} outcomes, MLP {widths} "
            f"({generator.parameter_count()} parameters)"
        )
    reupload = ", re-uploading" if config.reupload else ""
    readout = ""
    if config.readout == "heralded":
        readout = (
            f", heralded on {config.ancillas} {config.detector} ancilla{'s' if config.ancillas > 1 else ''} "
            f"({generator.outcomes} outcomes, {config.quadratures})"
        )
    return (
        f"{config.engine} engine, {config.modes} modes, {config.layers} layers, cutoff {config.cutoff}"
        f"{reupload}{readout} ({generator.parameter_count()} parameters)"
    )


def _axis_labels(config: TrainConfig) -> tuple[str, str]:
    if config.generator != "quantum":
        return ("x", "y")
    if config.readout == "heralded":
        given = "given the outcome, after readout"
        if config.quadratures == "xp":
            return (f"x (mode 0 ⟨x̂⟩ {given})", f"y (mode 0 ⟨p̂⟩ {given})")
        return (f"x (mode 0 ⟨x̂⟩ {given})", f"y (mode 1 ⟨x̂⟩ {given})")
    return ("x (mode 0 ⟨x̂⟩, after readout)", "y (mode 1 ⟨x̂⟩, after readout)")


def _draw_plots(run_dir, config, generator, target, rows, samples, outcomes, coverage) -> None:
    label = f"{target.name}, {_generator_description(config, generator)}"
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
        outcomes=outcomes if generator.outcomes else None,
        axis_labels=_axis_labels(config),
    )
    if generator.outcomes:
        plots.plot_outcomes(os.path.join(run_dir, "outcomes.png"), outcomes, generator.outcomes, title=label)
    if coverage is not None:
        plots.plot_mode_counts(
            os.path.join(run_dir, "mode_counts.png"),
            coverage.counts,
            coverage.num_samples,
            title=title,
        )
        plots.plot_coverage(os.path.join(run_dir, "coverage.png"), rows, coverage.num_modes, title=label)
    plots.plot_training(os.path.join(run_dir, "training.png"), rows, title=label)


def train(config: TrainConfig, log=print, callbacks=()) -> TrainResult:
    """Trains a coordinate quantum GAN as the config says and writes its results folder.

    The folder results_dir/run_name gets config.json at the start, metrics.csv after every
    evaluation, a checkpoint of the whole training state every checkpoint_every steps, and at
    the end coverage.json, samples.npy, the weights and the plots. A folder that already holds
    a run with the same settings is continued from its last checkpoint. Ctrl-C stops after the
    current step and still writes a checkpoint, the results and the plots.

    Args:
        config: the validated TrainConfig.
        log: where progress lines go (print by default).
        callbacks: extra Keras callbacks for `fit` (they run after the built-in ones).

    Returns:
        The TrainResult.

    Raises:
        targets.DataError: a data or centres file that cannot be used (nothing is written then).
        ConfigError: a run folder that cannot be written, or that holds another run.
    """
    started = time.time()
    target = make_target(config)
    run_dir, resuming = prepare_run_dir(config)
    keras.utils.set_random_seed(config.seed)
    gan = build_gan(config)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = make_checkpoint(gan, step)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(run_dir, "checkpoints"), max_to_keep=CHECKPOINTS_KEPT
    )
    rows, earlier_seconds, start_step = [], 0.0, 0
    if resuming:
        try:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as error:
            first_line = (getattr(error, "message", None) or str(error)).strip().splitlines()[0]
            raise ConfigError(
                f"--run-name {os.path.basename(run_dir)!r}: its checkpoint {manager.latest_checkpoint} "
                f"cannot be restored ({first_line}); choose another --run-name"
            ) from None
        start_step = int(step.numpy())
        if start_step >= config.steps:
            raise ConfigError(
                f"--steps {config.steps}: run {os.path.basename(run_dir)!r} has trained {start_step} steps "
                f"already; give --steps above {start_step} to continue it"
            )
        rows = read_metrics(run_dir, start_step)
        earlier_seconds = rows[-1]["elapsed_s"] if rows else 0.0
    write_atomic(os.path.join(run_dir, "config.json"), config.to_json() + "\n")
    action = f"resuming at step {start_step}" if resuming else "training"
    log(
        f"qgan: {action} on {target.name} with the {_generator_description(config, gan.generator)}, "
        f"batch {config.batch_size}, {config.steps} steps -> {run_dir}"
    )
    with Interruption() as interruption:
        loop = TrainingLoop(
            config,
            target,
            run_dir,
            rows,
            step,
            manager,
            interruption,
            clock=lambda: earlier_seconds + time.time() - started,
            log=log,
        )
        gan.fit(
            real_dataset(target, config, start_step),
            epochs=1,
            steps_per_epoch=config.steps - start_step,
            callbacks=[
                GuardMonitor([gan.critic_guard, gan.generator_guard]),
                LearningRateDecay(
                    decaying_optimizers(gan, config),
                    step,
                    config.steps,
                    config.lr_schedule,
                    config.lr_final_fraction,
                ),
                loop,
                *callbacks,
            ],
            verbose=0,
            shuffle=False,
        )
        loop.evaluate(loop.last_logs)  # a run stopped early (Ctrl-C, guard) still gets its final row
        loop.save_checkpoint()
    interrupted = interruption.requested and int(step.numpy()) < config.steps
    samples, trace, outcomes, coverage = (
        loop.last
        if loop.last is not None
        else evaluate(gan.generator, target, config.eval_samples, seed=[config.seed, int(step.numpy())])
    )
    _write_results(run_dir, config, target, gan, loop.rows, samples, outcomes, coverage, loop.clock())
    elapsed = time.time() - started
    final_step = int(step.numpy())
    summary = f"{'stopped' if interrupted else 'done'} at step {final_step} in {elapsed:.0f} s: "
    if coverage is not None:
        summary += (
            f"{coverage.modes_captured}/{coverage.num_modes} modes captured, "
            f"{100 * coverage.high_quality_fraction:.1f}% high-quality samples, "
            f"KL {coverage.kl_uniform:.3f}, "
            f"trace mean {loop.rows[-1]['eval_trace_mean']:.4f} (min {loop.rows[-1]['eval_trace_min']:.4f})"
        )
    else:
        summary += "no centres given, so no coverage"
    log(f"{summary}; plots in {run_dir}/")
    if interrupted:
        resume = dataclasses.replace(config, run_name=os.path.basename(run_dir), resume=True)
        log(
            f"interrupted; checkpoint at step {final_step} saved. Resume with:\n"
            f"  {resume.command_line(PROGRAM)}"
        )
    return TrainResult(run_dir, coverage, loop.rows, samples, trace, elapsed, interrupted, start_step)


def _write_results(run_dir, config, target, gan, rows, samples, outcomes, coverage, elapsed_seconds) -> None:
    """coverage.json, samples.npy, the weights and the plots, each written atomically."""
    final = {
        "step": rows[-1]["step"],
        "eval_samples": len(samples),
        "trace_mean": rows[-1]["eval_trace_mean"],
        "trace_min": rows[-1]["eval_trace_min"],
        "coverage": None if coverage is None else coverage.as_dict(),
        "elapsed_s": round(elapsed_seconds, 2),
    }
    write_atomic(os.path.join(run_dir, "coverage.json"), json.dumps(final, indent=2) + "\n")

    def save_generator(path):
        with open(path, "wb") as handle:
            np.savez(
                handle,
                **{variable.path.replace("/", "."): variable.numpy() for variable in gan.generator.weights},
            )

    save_atomic(os.path.join(run_dir, "samples.npy"), lambda path: _save_array(path, samples))
    save_atomic(os.path.join(run_dir, "generator.weights.npz"), save_generator)
    save_atomic(os.path.join(run_dir, "critic.weights.h5"), gan.critic.save_weights)
    if gan.generator.outcomes:
        save_atomic(os.path.join(run_dir, "outcomes.npy"), lambda path: _save_array(path, outcomes))
    _draw_plots(run_dir, config, gan.generator, target, rows, samples, outcomes, coverage)


def _save_array(path, array) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)
