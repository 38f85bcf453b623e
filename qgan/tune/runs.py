"""One training run of a trial: a fresh process, its evaluations read as they are written."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

import qgan
from qgan.training.cli import EXIT_GUARD_STOP, EXIT_INTERRUPTED

OBJECTIVES = {
    # name: (metrics.csv column, Optuna direction)
    "high-quality": ("high_quality_fraction", "maximize"),
    "modes": ("modes_captured", "maximize"),
    "kl": ("kl_uniform", "minimize"),
    "std-ratio": ("std_ratio_median", "minimize"),
    "w1": ("w1_ratio", "minimize"),
}
OBJECTIVES_HELP = (
    "high-quality = the final high-quality fraction (maximised), modes = modes captured (maximised), "
    "kl = KL divergence of the mode histogram from uniform (minimised), std-ratio = how far the median "
    "per-mode std ratio is from 1, |log ratio| (minimised), w1 = the two-sample distance over its "
    "real-vs-real reference (minimised); each is the median over --seeds"
)
RESULT_KEYS = ("modes_captured", "num_modes", "high_quality_fraction", "kl_uniform")
FIDELITY_KEYS = ("std_ratio_median", "std_ratio_min", "std_ratio_max", "offset_median", "w1_ratio")
# a std ratio of 0 (point masses) is this far from 1
WORST_LOG_RATIO = 20.0


def objective_value(objective: str, value: float) -> float:
    """The number Optuna gets for an objective's metrics.csv value (|log ratio| for std-ratio)."""
    if objective == "std-ratio":
        return abs(math.log(value)) if value > 0 else WORST_LOG_RATIO
    return value


@dataclasses.dataclass
class RunOutcome:
    """How one seed's run ended.

    Attributes:
        status: completed, guard-stop, pruned, interrupted or failed.
        result: its final numbers (RESULT_KEYS, trace_mean, trace_min, seconds, step), or None.
    """

    status: str
    result: dict | None


def child_environment(workers: int) -> dict:
    """The environment of a training process: the cores shared among the workers, this package first."""
    environment = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    environment.setdefault("TF_NUM_INTRAOP_THREADS", threads)
    environment.setdefault("TF_NUM_INTEROP_THREADS", "1" if workers > 1 else threads)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(qgan.__file__)))
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (package_parent, environment.get("PYTHONPATH")) if part
    )
    return environment


def read_final(run_dir: str) -> dict | None:
    """The final numbers of a run from its coverage.json, None when it has none."""
    try:
        with open(os.path.join(run_dir, "coverage.json"), encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError):
        return None
    coverage = saved.get("coverage") or {}
    fidelity = saved.get("fidelity") or {}
    result = {key: coverage.get(key) for key in RESULT_KEYS}
    result.update({key: fidelity.get(key) for key in FIDELITY_KEYS})
    result.update(
        trace_mean=saved["trace_mean"],
        trace_min=saved["trace_min"],
        seconds=saved.get("elapsed_s"),
        step=saved["step"],
        status=saved.get("status", "completed"),
    )
    return result


class _Evaluations:
    """New rows of a growing metrics.csv, each returned once."""

    def __init__(self, path: str):
        self.path = path
        self.seen = 0

    def new_rows(self) -> list[dict]:
        try:
            with open(self.path, encoding="utf-8", newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if row.get("step")]
        except OSError:
            return []
        fresh, self.seen = rows[self.seen :], max(self.seen, len(rows))
        return fresh


def run_training(
    tokens: tuple[str, ...],
    results_dir: str,
    run_name: str,
    *,
    metric: str,
    on_evaluation,
    stop: threading.Event,
    environment: dict,
    hurry: threading.Event | None = None,
    poll_seconds: float = 0.5,
) -> RunOutcome:
    """Trains one run in its own process and reports each evaluation while it runs.

    A run folder that already holds a checkpoint of these flags is resumed (a finished one returns at
    once); one that stopped before its first checkpoint is moved aside and the run starts afresh.

    Args:
        tokens: training flags, with --seed.
        results_dir: folder of the run folder.
        run_name: the run folder's name; its log is <results_dir>/<run_name>.log.
        metric: the metrics.csv column passed to `on_evaluation`.
        on_evaluation: called with (step, value) per evaluation; returns True to prune the run.
        stop: set by Ctrl-C; the run is then stopped (it saves a checkpoint first).
        environment: the process environment.
        hurry: set by a second Ctrl-C; the run then gets a second SIGINT, which stops it at once.
        poll_seconds: how often metrics.csv is read.

    Returns:
        The RunOutcome.
    """
    run_dir = os.path.join(results_dir, run_name)
    command = [
        sys.executable,
        "-m",
        "qgan.training.cli",
        *tokens,
        "--results-dir",
        results_dir,
        "--run-name",
        run_name,
    ]
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, f"{run_name}.log"), "a", encoding="utf-8") as log:
        if os.path.isfile(os.path.join(run_dir, "checkpoints", "checkpoint")):
            command.append("--resume")
        elif os.path.isdir(run_dir) and os.listdir(run_dir):
            aside = f"{run_dir}.no-checkpoint-{time.strftime('%Y%m%d-%H%M%S')}"
            os.rename(run_dir, aside)
            log.write(f"# {run_dir} stopped before its first checkpoint; moved to {aside}, starting afresh\n")
        log.write(f"$ qgan-train {shlex.join(command[3:])}\n")
        log.flush()
        # a session of its own keeps the terminal's Ctrl-C from the run: the study forwards it once
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
        evaluations = _Evaluations(os.path.join(run_dir, "metrics.csv"))
        pruned = interrupted = hurried = False
        while process.poll() is None:
            if stop.is_set() and not interrupted:
                interrupted = True
                process.send_signal(signal.SIGINT)
            if hurry is not None and hurry.is_set() and not hurried:
                hurried = True
                process.send_signal(signal.SIGINT)
            for row in evaluations.new_rows():
                if not pruned and not interrupted and row.get(metric):
                    if on_evaluation(int(row["step"]), float(row[metric])):
                        pruned = True
                        process.send_signal(signal.SIGINT)
            time.sleep(poll_seconds)
        for row in evaluations.new_rows():
            if not pruned and not interrupted and row.get(metric) and process.returncode == 0:
                on_evaluation(int(row["step"]), float(row[metric]))
    result = read_final(run_dir)
    if pruned:
        return RunOutcome("pruned", result)
    if interrupted or process.returncode == EXIT_INTERRUPTED:
        return RunOutcome("interrupted", result)
    if process.returncode == 0 and result is not None:
        return RunOutcome("completed", result)
    if process.returncode == EXIT_GUARD_STOP and result is not None:
        return RunOutcome("guard-stop", result)
    return RunOutcome("failed", result)
