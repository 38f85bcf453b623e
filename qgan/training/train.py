"""train(config): builds the GAN, trains it with Keras `fit`, evaluates coverage and writes the run folder."""

from __future__ import annotations

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from qgan.evaluation.coverage import CoverageReport
from qgan.evaluation.fidelity import FidelityMeter, FidelityReport
from qgan.guard import GuardMonitor
from qgan.runtime.errors import InputError
from qgan.runtime.files import write_atomic
from qgan.training.builders import (
    build_gan,
    decaying_rates,
    generator_description,
    make_checkpoint,
    make_target,
    real_dataset,
    restore_newest_readable,
)
from qgan.training.callbacks import (
    EpochTensorBoard,
    Interruption,
    SampleImages,
    TrainingLoop,
    evaluate,
    metric_variables,
)
from qgan.training.compiler import prepare_compiler
from qgan.training.config import ConfigError, TrainConfig
from qgan.training.run_folder import (
    prepare_run_dir,
    read_metrics,
    write_results,
)
from qgan.training.schedules import LearningRateDecay

CHECKPOINTS_KEPT = 3
TENSORBOARD_FOLDER = "tensorboard"
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
        status: how the run ended (see run_status).
        fidelity: the final evaluation's FidelityReport (None without centres or held-out points).
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
    status: str = "completed"
    fidelity: FidelityReport | None = None


def run_status(interrupted: bool, stopped_by: str | None, short: bool = False) -> str:
    """How a run ended.

    Returns:
        "guard-stop" (a guard's recovery="stop"), "interrupted" (Ctrl-C), "stopped" (before its
        last step, by another callback such as EarlyStopping) or "completed".
    """
    if stopped_by is not None:
        return "guard-stop"
    if interrupted:
        return "interrupted"
    return "stopped" if short else "completed"


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
    config.check_applicable()
    target = make_target(config)
    run_dir, resuming, lock = prepare_run_dir(config)
    with lock:
        try:
            return _train_in(run_dir, resuming, config, target, started, log, callbacks)
        except InputError:
            lock.restore()  # a refused resume leaves the folder as it found it
            raise


def _train_in(run_dir, resuming, config, target, started, log, callbacks) -> TrainResult:
    """train() inside its locked run folder."""
    prepare_compiler(config)
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
        restore_newest_readable(gan, step, manager, os.path.basename(run_dir), log)
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
    meter = FidelityMeter(target, config.eval_samples, config.seed)
    carried = None
    if start_step % config.eval_every:
        carried = [variable.numpy() for variable in metric_variables(gan)]
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
            carried=carried,
            started=started,
            meter=meter,
        )
        run_callbacks = [
            monitor,
            LearningRateDecay(
                decaying_rates(gan, config), step, config.steps, config.lr_schedule, config.lr_final_fraction
            ),
            loop,
        ]
        if config.tensorboard:
            log_dir = os.path.join(run_dir, TENSORBOARD_FOLDER)
            run_callbacks.append(EpochTensorBoard(log_dir, write_graph=False))
            run_callbacks.append(SampleImages(log_dir, loop, config, target))
        # an epoch is one evaluation interval; a run resumed between two evaluations first
        # finishes the interrupted epoch, so its epochs line up with those of an uninterrupted run
        epochs = -(-config.steps // config.eval_every)
        epoch_start = start_step
        while epoch_start < config.steps and not getattr(gan, "stop_training", False):
            epoch = epoch_start // config.eval_every
            whole_epochs = epoch_start % config.eval_every == 0
            gan.fit(
                real_dataset(target, config, epoch_start),
                initial_epoch=epoch,
                epochs=epochs if whole_epochs else epoch + 1,
                steps_per_epoch=config.eval_every - epoch_start % config.eval_every,
                callbacks=[*run_callbacks, *callbacks],
                verbose=0,
                shuffle=False,
            )
            epoch_start = int(step.numpy()) if whole_epochs else (epoch + 1) * config.eval_every
        # a run stopped early (Ctrl-C, guard) still gets a checkpoint, with the running means since
        # the last evaluation, and then its final row
        loop.save_checkpoint()
        loop.evaluate(loop.last_logs)
    final_step = int(step.numpy())
    interrupted = interruption.requested and final_step < config.steps
    stopped_by = monitor.stopped_by if final_step < config.steps else None
    status = run_status(interrupted, stopped_by, final_step < config.steps)
    if loop.last is not None:
        final = loop.last
    else:
        with gan.averaged() as generator:
            final = evaluate(
                generator, target, config.eval_samples, seed=[config.seed, final_step], meter=meter
            )
    write_results(run_dir, config, target, gan, loop.rows, final, loop.clock(), status, stopped_by)
    elapsed = time.time() - started
    ending = {
        "completed": "done",
        "interrupted": "stopped",
        "guard-stop": f"stopped by {stopped_by}",
        "stopped": "stopped by a callback",
    }
    summary = f"{ending[status]} at step {final_step} in {elapsed:.0f} s: "
    coverage = final.coverage
    if coverage is not None:
        summary += (
            f"{coverage.modes_captured}/{coverage.num_modes} modes captured, "
            f"{100 * coverage.high_quality_fraction:.1f}% high-quality samples, "
            f"KL {coverage.kl_uniform:.3f}, "
        )
    else:
        summary += "no centres given, so no coverage; "
    summary += fidelity_summary(final.fidelity)
    summary += (
        f"trace mean {loop.rows[-1]['eval_trace_mean']:.4f} (min {loop.rows[-1]['eval_trace_min']:.4f})"
    )
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
        run_dir,
        coverage,
        loop.rows,
        final.samples,
        final.trace,
        elapsed,
        interrupted,
        start_step,
        stopped_by,
        status,
        final.fidelity,
    )


def fidelity_summary(fidelity) -> str:
    """The fidelity part of the final line: mode widths, offsets and the distance against its reference."""
    if fidelity is None:
        return ""
    parts = []
    if fidelity.std_ratio_median is not None:
        parts.append(
            f"mode std ratio {fidelity.std_ratio_median:.2f} ({fidelity.std_ratio_min:.2f}–"
            f"{fidelity.std_ratio_max:.2f}), offset {fidelity.offset_median:.2f} std"
        )
    if fidelity.w1_ratio is not None:
        parts.append(
            f"W1 {fidelity.w1:.3g} ({fidelity.w1_ratio:.2f}× real-vs-real {fidelity.w1_reference:.3g})"
        )
    return "".join(f"{part}, " for part in parts)
