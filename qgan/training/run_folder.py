"""A run's folder: preparing or reopening it, its metric tables, its result files and figures."""

from __future__ import annotations

import csv
import fcntl
import io
import itertools
import json
import os
import time

import numpy as np

from qgan.evaluation import plots
from qgan.evaluation.fidelity import FIDELITY_COLUMNS
from qgan.runtime.files import save_atomic, write_atomic
from qgan.training.builders import generator_description
from qgan.training.config import ConfigError, TrainConfig, flag_name
from qgan.training.readers import RunFolderError, read_run_config
from qgan.training.saved_generator import save_generator

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
    *FIDELITY_COLUMNS,
    "outcome_entropy",
    "energy_distance",
    "local_mmd",
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

#: held by the training process (its pid inside) while it writes the folder
LOCK_FILE = ".lock"

PLOT_FILES = ("samples.png", "modes.png", "mode_counts.png", "coverage.png", "training.png")

OUTCOME_COLUMNS = ("step", "outcome", "frequency", "mean_x", "mean_y", "spread")


def prepare_run_dir(config: TrainConfig) -> tuple[str, bool, object]:
    """Creates or reopens results_dir/run_name, and locks it for this process.

    A folder holding a run with checkpoints is resumed when its saved config.json matches
    this config in everything but the step budget. Any other non-empty folder is refused, as
    is a folder that cannot be written or that another process holds. Nothing is written
    before every check has passed, except the folder's lock file.

    Returns:
        (run folder, whether to resume from its last checkpoint, the RunLock that holds the
        folder until it is closed).

    Raises:
        ConfigError: naming the flag, the value and what is allowed.
    """
    if os.path.exists(config.results_dir) and not os.path.isdir(config.results_dir):
        raise ConfigError(f"--results-dir {config.results_dir!r} is a file, not a folder; choose a folder")
    if config.run_name is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = _claim_new_folder(config, f"{config.dataset}-{config.generator_label()}-{stamp}")
        return run_dir, False, _lock(run_dir, os.path.basename(run_dir))
    run_name = config.run_name
    run_dir = os.path.join(config.results_dir, run_name)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ConfigError(
            f"--run-name {run_name!r}: {run_dir} is a file, not a run folder; choose another --run-name"
        )
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
    elif _holds_files(run_dir):
        raise ConfigError(
            f"--run-name {run_name!r}: {run_dir} already holds files but no checkpoint; "
            "choose another --run-name"
        )
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, f".write-test-{os.getpid()}")
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as error:
        raise _unwritable(config, error) from None
    lock = _lock(run_dir, run_name)
    if resumable != os.path.isfile(os.path.join(run_dir, "checkpoints", "checkpoint")) or (
        not resumable and _holds_files(run_dir)
    ):
        lock.close()
        raise ConfigError(
            f"--run-name {run_name!r}: another process wrote into {run_dir} meanwhile; start again"
        )
    return run_dir, resumable, lock


def _claim_new_folder(config: TrainConfig, name: str) -> str:
    """Creates results_dir/name, or name-2, name-3, … when another run took it (e.g. in the same second).

    os.mkdir fails on a folder that exists, so two processes never claim the same one.
    """
    try:
        os.makedirs(config.results_dir, exist_ok=True)
        for attempt in itertools.count(1):
            run_dir = os.path.join(config.results_dir, name if attempt == 1 else f"{name}-{attempt}")
            try:
                os.mkdir(run_dir)
                return run_dir
            except FileExistsError:
                continue
    except OSError as error:
        raise _unwritable(config, error) from None


def _unwritable(config: TrainConfig, error: OSError) -> ConfigError:
    return ConfigError(
        f"--results-dir {config.results_dir!r} cannot be written ({error.strerror or error}); "
        "choose a writable folder"
    )


def _holds_files(run_dir: str) -> bool:
    return os.path.isdir(run_dir) and any(name != LOCK_FILE for name in os.listdir(run_dir))


class RunLock:
    """An exclusive, non-blocking lock on a run folder's lock file, which holds the owner's pid.

    Use it as a context manager (or close it); a command refused after taking it calls
    `restore()` first, so that the lock file is left as it was before.
    """

    def __init__(self, run_dir: str, run_name: str):
        path = os.path.join(run_dir, LOCK_FILE)
        self.existed = os.path.exists(path)
        self.handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            owner = self.handle.read().strip() or "unknown"
            self.handle.close()
            raise ConfigError(
                f"--run-name {run_name!r}: another process (pid {owner}) is training in {run_dir}; "
                "wait for it to finish or choose another --run-name"
            ) from None
        self.path = path
        self.handle.seek(0)
        self.previous = self.handle.read()
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()

    def restore(self) -> None:
        """Puts the lock file back as it was (removed, if this lock created it), and releases it."""
        if self.handle.closed:
            return
        if self.existed:
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.write(self.previous)
            self.handle.flush()
        else:
            os.remove(self.path)
        self.close()

    def close(self) -> None:
        self.handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def _lock(run_dir: str, run_name: str) -> RunLock:
    return RunLock(run_dir, run_name)


def _read_saved_config(run_dir: str, run_name: str) -> dict:
    try:
        return read_run_config(run_dir)
    except RunFolderError as error:
        raise ConfigError(f"--run-name {run_name!r}: {error}; choose another --run-name") from None


def metrics_csv(rows, columns=METRIC_COLUMNS) -> str:
    """Metric rows as CSV text with the header `columns`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in columns})
    return buffer.getvalue()


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
                        int(float(text)) if key in ("step", "outcome") or is_count(key) else float(text)
                    )
            if row["step"] is not None and row["step"] <= up_to_step:
                rows.append(row)
    return rows


def is_count(key: str) -> bool:
    return key == "modes_captured" or key.endswith(("_steps", "_grads", "_recoveries"))


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


def axis_labels(config: TrainConfig, target=None) -> tuple[str, str]:
    """The samples figure's axis labels: a user file's column names, else what the coordinates are."""
    if target is not None and target.columns is not None:
        return target.columns
    if config.generator != "quantum":
        return ("x", "y")
    if config.readout == "heralded":
        given = "given the outcome, after readout"
        if config.quadratures == "xp":
            return (f"x (mode 0 ⟨x̂⟩ {given})", f"y (mode 0 ⟨p̂⟩ {given})")
        return (f"x (mode 0 ⟨x̂⟩ {given})", f"y (mode 1 ⟨x̂⟩ {given})")
    return ("x (mode 0 ⟨x̂⟩, after readout)", "y (mode 1 ⟨x̂⟩, after readout)")


def _evaluation_title(label, step, coverage) -> str:
    if coverage is None:
        return f"step {step}\n{label}"
    return (
        f"step {step}: {coverage.modes_captured}/{coverage.num_modes} modes, "
        f"{100 * coverage.high_quality_fraction:.1f}% high quality, KL {coverage.kl_uniform:.3f}\n{label}"
    )


def draw_samples(path, config, generator, target, step, samples, outcomes, coverage) -> str:
    """The samples figure of one evaluation (samples.png, and TensorBoard's image of each evaluation)."""
    label = f"{target.name}, {generator_description(config, generator)}"
    return plots.plot_samples(
        path,
        samples,
        target_points=target.sample(len(samples), seed=config.seed + 1),
        centers=target.centers,
        std=target.std,
        counts=None if coverage is None else coverage.counts,
        title=_evaluation_title(label, step, coverage),
        outcomes=outcomes if generator.outcomes else None,
        axis_labels=axis_labels(config, target),
        bounds=target.bounds() if target.points is not None else None,
    )


def draw_plots(run_dir, config, generator, target, rows, samples, outcomes, coverage) -> None:
    label = f"{target.name}, {generator_description(config, generator)}"
    step = rows[-1]["step"]
    draw_samples(
        os.path.join(run_dir, "samples.png"), config, generator, target, step, samples, outcomes, coverage
    )
    if generator.outcomes:
        plots.plot_outcomes(os.path.join(run_dir, "outcomes.png"), outcomes, generator.outcomes, title=label)
    if target.centers is not None:
        plots.plot_modes(
            os.path.join(run_dir, "modes.png"),
            samples,
            target.sample(len(samples), seed=config.seed + 1),
            target.centers,
            target.std,
            title=f"step {step}: each mode zoomed in",
        )
    if coverage is not None:
        plots.plot_mode_counts(
            os.path.join(run_dir, "mode_counts.png"),
            coverage.counts,
            coverage.num_samples,
            title=_evaluation_title(label, step, coverage),
        )
        plots.plot_coverage(os.path.join(run_dir, "coverage.png"), rows, coverage.num_modes, title=label)
    plots.plot_training(os.path.join(run_dir, "training.png"), rows, title=label)


def write_results(run_dir, config, target, gan, rows, final, elapsed_seconds, status, stopped_by) -> None:
    """coverage.json (with how the run ended), samples.npy, the weights and the plots, written atomically.

    The generator is saved with its averaged weights when it has an average (those the final
    evaluation used); the training checkpoints keep both.
    """
    coverage, fidelity = final.coverage, final.fidelity
    summary = {
        "step": rows[-1]["step"],
        "status": status,
        "stopped_by": stopped_by,
        "eval_samples": len(final.samples),
        "trace_mean": rows[-1]["eval_trace_mean"],
        "trace_min": rows[-1]["eval_trace_min"],
        "coverage": None if coverage is None else coverage.as_dict(),
        "fidelity": None if fidelity is None else fidelity.as_dict(),
        "elapsed_s": round(elapsed_seconds, 2),
    }
    write_atomic(os.path.join(run_dir, "coverage.json"), json.dumps(summary, indent=2) + "\n")

    save_atomic(os.path.join(run_dir, "samples.npy"), lambda path: _save_array(path, final.samples))
    with gan.averaged() as generator:
        save_generator(generator, run_dir)
    save_atomic(os.path.join(run_dir, "critic.weights.h5"), gan.critic.save_weights)
    if gan.generator.outcomes:
        save_atomic(os.path.join(run_dir, "outcomes.npy"), lambda path: _save_array(path, final.outcomes))
    draw_plots(run_dir, config, gan.generator, target, rows, final.samples, final.outcomes, coverage)


def _save_array(path, array) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)
