"""The training run's Keras callbacks: the step loop (evaluate, checkpoint, Ctrl-C) and TensorBoard images."""

from __future__ import annotations

import dataclasses
import os
import signal
import tempfile
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from qgan.evaluation.coverage import CoverageReport, mode_coverage
from qgan.evaluation.fidelity import FIDELITY_COLUMNS, FidelityMeter, FidelityReport
from qgan.runtime.files import write_atomic
from qgan.training.run_folder import (
    METRIC_COLUMNS,
    OUTCOME_COLUMNS,
    draw_samples,
    is_count,
    metrics_csv,
    outcome_rows,
    read_metrics,
)

EVAL_CHUNK = 250
EVALUATION_LOGS = (
    "modes_captured",
    "high_quality_fraction",
    "kl_uniform",
    *FIDELITY_COLUMNS,
    "eval_trace_mean",
    "eval_trace_min",
)


def metric_variables(model) -> list:
    """The variables of every Keras metric of `model`, in a fixed order (the running means)."""
    return [variable for metric in model.metrics for variable in metric.variables]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One evaluation of a generator: fresh samples, their traces and outcomes, coverage and fidelity."""

    samples: np.ndarray
    trace: np.ndarray
    outcomes: np.ndarray
    coverage: CoverageReport | None
    fidelity: FidelityReport | None


def evaluate(generator, target, num_samples: int, seed, meter: FidelityMeter | None = None) -> Evaluation:
    """Fresh samples of the generator, their coverage (None without centres) and fidelity (with a meter)."""
    samples, trace, outcomes = generator.generate(
        num_samples, chunk_size=min(EVAL_CHUNK, num_samples), seed=seed, outcomes=True
    )
    coverage = None
    if target.centers is not None:
        coverage = mode_coverage(samples, target.centers, target.std)
    fidelity = meter.measure(samples) if meter is not None else None
    return Evaluation(samples, trace, outcomes, coverage, fidelity)


def _format_progress(row, config, num_modes) -> str:
    parts = [f"step {row['step']:>6d}/{config.steps}"]
    parts.append(f"d_loss {row['d_loss']:+.4f}  g_loss {row['g_loss']:+.4f}  W {row['wasserstein']:+.4f}")
    if row["modes_captured"] is not None:
        parts.append(
            f"modes {row['modes_captured']}/{num_modes}  HQ {100 * row['high_quality_fraction']:5.1f}%  "
            f"KL {row['kl_uniform']:.3f}"
        )
    if row.get("std_ratio_median") is not None:
        parts.append(
            f"std× {row['std_ratio_median']:.2f} ({row['std_ratio_min']:.2f}–{row['std_ratio_max']:.2f})  "
            f"off {row['offset_median']:.2f}"
        )
    if row.get("w1_ratio") is not None:
        parts.append(f"W1 {row['w1_ratio']:.2f}×ref")
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

    Both also happen at the last step. Ctrl-C stops training after the current step. An epoch is
    one evaluation interval: at its end the evaluation (modes, high quality, KL, trace) joins the
    epoch logs, so TensorBoard, CSVLogger or EarlyStopping placed after this callback see it.

    Args:
        carried: the metrics' variable values to start the first epoch with (a run resumed
            between two evaluations), None to start from Keras' reset.
        meter: the FidelityMeter of the evaluations, or None.
        started: time.time() when this process began the run; the first step's line says how long
            it took to get there (building, tracing and compiling the training step).
    """

    def __init__(
        self,
        config,
        target,
        run_dir,
        rows,
        step,
        manager,
        interruption,
        clock,
        log,
        carried=None,
        started=None,
        meter=None,
    ):
        super().__init__()
        self.meter = meter
        self.carried = carried
        self.started = started
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
        self.saved_step = int(step.numpy()) or None  # a resumed run starts at a restored checkpoint
        self.outcome_rows = (
            read_metrics(run_dir, rows[-1]["step"], "outcomes.csv", OUTCOME_COLUMNS) if rows else []
        )

    def on_epoch_begin(self, epoch, logs=None):
        # fit resets the metrics before each epoch: a run resumed between two evaluations puts back
        # the running means its checkpoint restored
        if self.carried is not None:
            for variable, value in zip(metric_variables(self.model), self.carried):
                variable.assign(value)
            self.carried = None

    def current_row(self) -> dict | None:
        """The metrics row of the current step, None when the step has not been evaluated."""
        if self.rows and self.rows[-1]["step"] == int(self.step.numpy()):
            return self.rows[-1]
        return None

    def on_epoch_end(self, epoch, logs=None):
        # one epoch is one evaluation interval: its evaluation joins the logs of the later callbacks
        row = self.current_row()
        if logs is not None and row is not None:
            for key in EVALUATION_LOGS:
                if row[key] is not None:
                    logs[key] = row[key]

    def on_train_batch_end(self, batch, logs=None):
        self.step.assign_add(1)
        self.last_logs = dict(logs or {})
        step = int(self.step.numpy())
        if self.started is not None:
            seconds = time.time() - self.started
            self.log(f"qgan: step {step} done {seconds:.1f} s after the run began (compilation included)")
            self.started = None
        if step % self.config.eval_every == 0 or step == self.config.steps:
            self.evaluate(self.last_logs)
        if step % self.config.checkpoint_every == 0 or step == self.config.steps:
            self.save_checkpoint()
        if self.interruption.requested or step >= self.config.steps:  # the last epoch may be short
            self.model.stop_training = True

    def evaluate(self, logs) -> None:
        """Appends a metrics row (fresh samples, coverage, the logs since the last row) and prints it."""
        step = int(self.step.numpy())
        if self.rows and self.rows[-1]["step"] == step:
            return
        with self.model.averaged() as generator:
            evaluation = evaluate(
                generator,
                self.target,
                self.config.eval_samples,
                seed=[self.config.seed, step],
                meter=self.meter,
            )
        row = {key: None for key in METRIC_COLUMNS}
        row["step"] = step
        row["elapsed_s"] = round(self.clock(), 2)
        for key in METRIC_COLUMNS:
            if key in logs:
                value = float(logs[key])
                row[key] = int(value) if is_count(key) else value
        row["eval_trace_mean"] = float(np.mean(evaluation.trace))
        row["eval_trace_min"] = float(np.min(evaluation.trace))
        if evaluation.coverage is not None:
            row["modes_captured"] = evaluation.coverage.modes_captured
            row["high_quality_fraction"] = evaluation.coverage.high_quality_fraction
            row["kl_uniform"] = evaluation.coverage.kl_uniform
        if evaluation.fidelity is not None:
            row.update(evaluation.fidelity.summary())
        self.rows.append(row)
        self.last = evaluation
        write_atomic(os.path.join(self.run_dir, "metrics.csv"), metrics_csv(self.rows))
        if self.model.generator.outcomes:
            self.outcome_rows += outcome_rows(step, evaluation.samples, evaluation.outcomes)
            write_atomic(
                os.path.join(self.run_dir, "outcomes.csv"), metrics_csv(self.outcome_rows, OUTCOME_COLUMNS)
            )
        num_modes = len(self.target.centers) if self.target.centers is not None else 0
        self.log(_format_progress(row, self.config, num_modes))

    def save_checkpoint(self) -> None:
        """Writes a checkpoint of the current step unless this run restored or wrote it already.

        (A resumed run that skipped a damaged newest checkpoint writes that step's checkpoint anew.)
        """
        step = int(self.step.numpy())
        if self.saved_step == step:
            return
        self.manager.save(checkpoint_number=step)
        self.saved_step = step


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, without the per-batch work that writes nothing at update_freq="epoch".

    Keras' callback passes every batch's logs to `tf.summary.scalar` even when it writes only per
    epoch and no writer records them: 37 eager calls per step of the default run, for nothing.
    With batch writing, step timing, profiling or the graph asked for, Keras' own per-batch
    method runs unchanged.
    """

    def on_train_batch_end(self, batch, logs=None):
        if (
            self.update_freq != "epoch"
            or self.write_steps_per_second
            or getattr(self, "_should_trace", True)
            or getattr(self, "_should_write_train_graph", True)
        ):
            super().on_train_batch_end(batch, logs)


class SampleImages(keras.callbacks.Callback):
    """Writes the samples figure of every evaluation as a TensorBoard image (`samples`, step = epoch).

    Args:
        log_dir: the TensorBoard folder; the images go to its `evaluation` sub-folder.
        loop: the run's TrainingLoop, which holds the last evaluation.
        config, target: the run's TrainConfig and Target, for the figure.
    """

    def __init__(self, log_dir, loop, config, target):
        super().__init__()
        self.loop = loop
        self.config = config
        self.target = target
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "evaluation"))

    def on_epoch_end(self, epoch, logs=None):
        row = self.loop.current_row()
        if row is None or self.loop.last is None:
            return
        last = self.loop.last
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "samples.png")
            draw_samples(
                path,
                self.config,
                self.model.generator,
                self.target,
                row["step"],
                last.samples,
                last.outcomes,
                last.coverage,
            )
            with open(path, "rb") as handle:
                image = tf.io.decode_png(handle.read(), channels=3)
        with self.writer.as_default():
            tf.summary.image("samples", image[tf.newaxis], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.flush()
