"""train(config): builds the GAN, trains it with Keras `fit`, evaluates coverage and writes the run folder."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from qgan.builders import (
    build_gan,
    decaying_rates,
    generator_description,
    make_checkpoint,
    make_target,
    real_dataset,
    restore_checkpoint,
)
from qgan.config import ConfigError, TrainConfig
from qgan.coverage import CoverageReport, mode_coverage
from qgan.files import write_atomic
from qgan.guard import GuardMonitor
from qgan.run_folder import (
    METRIC_COLUMNS,
    OUTCOME_COLUMNS,
    is_count,
    metrics_csv,
    outcome_rows,
    prepare_run_dir,
    read_metrics,
    write_results,
)
from qgan.schedules import LearningRateDecay

EVAL_CHUNK = 250
CHECKPOINTS_KEPT = 3
PROGRAM = "scripts/train_coordinate_quantum_gan.py"


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
        stopped_by: the guard whose recovery="stop" ended the run early, None otherwise.
    """

    run_dir: str
    coverage: CoverageReport | None
    metrics: list
    samples: np.ndarray
    trace: np.ndarray
    elapsed_seconds: float
    interrupted: bool = False
    resumed_from: int = 0
    stopped_by: str | None = None

    @property
    def status(self) -> str:
        """How the run ended: "completed", "interrupted" (Ctrl-C) or "guard-stop"."""
        return run_status(self.interrupted, self.stopped_by)


def run_status(interrupted: bool, stopped_by: str | None) -> str:
    """How a run ended: "guard-stop" (a guard's recovery="stop"), "interrupted" (Ctrl-C) or "completed"."""
    if stopped_by is not None:
        return "guard-stop"
    return "interrupted" if interrupted else "completed"


def evaluate(generator, target, num_samples: int, seed) -> tuple:
    """Fresh samples, their traces, their outcomes and their coverage (None without centres)."""
    samples, trace, outcomes = generator.generate(
        num_samples, chunk_size=min(EVAL_CHUNK, num_samples), seed=seed, outcomes=True
    )
    coverage = None
    if target.centers is not None:
        coverage = mode_coverage(samples, target.centers, target.std)
    return samples, trace, outcomes, coverage


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

    def on_train_begin(self, logs=None):
        self.running_means = [
            variable.numpy() for metric in self.model.metrics for variable in metric.variables
        ]

    def on_epoch_begin(self, epoch, logs=None):
        # fit resets the metrics before each epoch: put back the running means a resumed run restored
        variables = [variable for metric in self.model.metrics for variable in metric.variables]
        for variable, value in zip(variables, self.running_means):
            variable.assign(value)

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
                row[key] = int(value) if is_count(key) else value
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
        ConfigError: a run folder that cannot be written, that holds another run, or that another
            process is training in.
    """
    started = time.time()
    target = make_target(config)
    run_dir, resuming, lock = prepare_run_dir(config)
    with lock:
        return _train_in(run_dir, resuming, config, target, started, log, callbacks)


def _train_in(run_dir, resuming, config, target, started, log, callbacks) -> TrainResult:
    """train() inside its locked run folder."""
    keras.utils.set_random_seed(config.seed)
    gan = build_gan(config)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = make_checkpoint(gan, step)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(run_dir, "checkpoints"), max_to_keep=CHECKPOINTS_KEPT
    )
    guards = [gan.critic_guard, gan.generator_guard]
    rows, earlier_seconds, start_step = [], 0.0, 0
    if resuming:
        try:
            restore_checkpoint(gan, step, manager.latest_checkpoint)
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
        for guard in guards:
            if guard.stop_requested:
                log(f"{guard.name} had stopped this run at step {start_step}; resuming clears the stop")
                guard.clear_stop()
    write_atomic(os.path.join(run_dir, "config.json"), config.to_json() + "\n")
    action = f"resuming at step {start_step}" if resuming else "training"
    log(
        f"qgan: {action} on {target.name} with the {generator_description(config, gan.generator)}, "
        f"batch {config.batch_size}, {config.steps} steps -> {run_dir}"
    )
    monitor = GuardMonitor(guards)
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
                monitor,
                LearningRateDecay(
                    decaying_rates(gan, config),
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
        # a run stopped early (Ctrl-C, guard) still gets a checkpoint, with the running means since
        # the last evaluation, and then its final row
        loop.save_checkpoint()
        loop.evaluate(loop.last_logs)
    final_step = int(step.numpy())
    interrupted = interruption.requested and final_step < config.steps
    stopped_by = monitor.stopped_by if final_step < config.steps else None
    status = run_status(interrupted, stopped_by)
    samples, trace, outcomes, coverage = (
        loop.last
        if loop.last is not None
        else evaluate(gan.generator, target, config.eval_samples, seed=[config.seed, final_step])
    )
    write_results(
        run_dir, config, target, gan, loop.rows, samples, outcomes, coverage, loop.clock(), status, stopped_by
    )
    elapsed = time.time() - started
    ending = {"completed": "done", "interrupted": "stopped", "guard-stop": f"stopped by {stopped_by}"}
    summary = f"{ending[status]} at step {final_step} in {elapsed:.0f} s: "
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
    resume = dataclasses.replace(config, run_name=os.path.basename(run_dir), resume=True)
    if status == "interrupted":
        log(
            f"interrupted; checkpoint at step {final_step} saved. Resume with:\n"
            f"  {resume.command_line(PROGRAM)}"
        )
    elif status == "guard-stop":
        log(
            f"{stopped_by}: {config.max_consecutive_bad} bad steps in a row (non-finite loss or "
            f"gradients), so --recovery stop ended the run; checkpoint at step {final_step} saved. "
            f"Resuming clears the stop:\n  {resume.command_line(PROGRAM)}"
        )
    return TrainResult(
        run_dir, coverage, loop.rows, samples, trace, elapsed, interrupted, start_step, stopped_by
    )
