"""Sweeps: a grid of training runs over flag values, run as parallel processes and tabulated."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import qgan
from qgan import plots
from qgan.cli import EXIT_GUARD_STOP, EXIT_INTERRUPTED, HelpFormatter
from qgan.config import RUN_NAME_PATTERN, TrainConfig, conflicting_settings, flag_name
from qgan.files import write_atomic
from qgan.sweep_grid import (
    TRAIN_PROGRAM,
    Run,
    SweepError,
    format_value,
    parse_grid,
    plan_runs,
)
from qgan.sweep_tables import heatmap_cells, markdown_runs, write_tables

EXIT_LABELS = {0: "ok", EXIT_INTERRUPTED: "interrupted", EXIT_GUARD_STOP: "stopped by guard"}


def read_result(run_dir: str) -> dict | None:
    """The final coverage.json of a run, None when it has none."""
    try:
        with open(os.path.join(run_dir, "coverage.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _label(result: dict, steps: int) -> str:
    """The status label of a run from its coverage.json, when its process ended unobserved."""
    if result.get("status") == "guard-stop":
        return EXIT_LABELS[EXIT_GUARD_STOP]
    return "ok" if result["step"] == steps else "interrupted"


def check_existing_runs(runs: list[Run], sweep_dir: str) -> None:
    """Refuses a sweep folder whose run folders hold runs of other settings.

    Raises:
        SweepError: naming the first run and the settings that differ.
    """
    for run in runs:
        path = os.path.join(sweep_dir, run.name, "config.json")
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                saved = json.load(handle)
        except (OSError, ValueError):
            saved = {}
        differing = [flag_name(key) for key in conflicting_settings(run.config, saved)]
        if differing:
            raise SweepError(
                f"--name {os.path.basename(sweep_dir)!r}: its {run.name} holds a run with other settings "
                f"({', '.join(differing)}); choose another --name"
            )


def _row(run: Run, status: str, result: dict | None) -> dict:
    row = {
        "run": run.name,
        **{field: format_value(value) for field, value in run.values.items()},
        "status": status,
    }
    coverage = (result or {}).get("coverage") or {}
    row["modes_captured"] = coverage.get("modes_captured", "")
    row["num_modes"] = coverage.get("num_modes", "")
    row["high_quality_fraction"] = coverage.get("high_quality_fraction", "")
    row["kl_uniform"] = coverage.get("kl_uniform", "")
    row["trace_mean"] = (result or {}).get("trace_mean", "")
    row["trace_min"] = (result or {}).get("trace_min", "")
    row["seconds"] = (result or {}).get("elapsed_s", "")
    return row


def _child_environment(jobs: int) -> dict:
    environment = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    environment.setdefault("TF_NUM_INTRAOP_THREADS", threads)
    environment.setdefault("TF_NUM_INTEROP_THREADS", "1" if jobs > 1 else threads)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(qgan.__file__)))
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (package_parent, environment.get("PYTHONPATH")) if part
    )
    return environment


def run_sweep(runs: list[Run], sweep_dir: str, jobs: int = 1, log=print) -> list[dict]:
    """Trains every run not finished yet, at most `jobs` at a time, each in its own process.

    A run whose folder already holds final results for its step budget is not trained again,
    so an interrupted sweep continues where it stopped when repeated with the same --name.

    Args:
        runs: the planned runs.
        sweep_dir: the sweep folder; runs go to sweep_dir/<run name>, logs to <run name>.log.
        jobs: processes at a time.
        log: receives one progress line per started and finished run.

    Returns:
        One row per run (COLUMNS plus the swept fields), in the order of `runs`.
    """
    rows: dict[str, dict] = {}
    pending = []
    for run in runs:
        result = read_result(os.path.join(sweep_dir, run.name))
        if result is not None and result.get("step") == run.config["steps"]:
            rows[run.name] = _row(run, "reused", result)
            log(f"[{len(rows)}/{len(runs)}] {run.name} finished earlier: {_summary(rows[run.name])}")
        else:
            pending.append(run)
    environment = _child_environment(jobs)
    running: dict[str, tuple[Run, subprocess.Popen, object]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                run = pending.pop(0)
                command = [
                    sys.executable,
                    "-m",
                    "qgan.cli",
                    *run.tokens,
                    "--results-dir",
                    sweep_dir,
                    "--run-name",
                    run.name,
                ]
                handle = open(os.path.join(sweep_dir, f"{run.name}.log"), "w", encoding="utf-8")
                handle.write(f"$ {TRAIN_PROGRAM} {shlex.join(command[3:])}\n")
                handle.flush()
                # a session of its own keeps the terminal's Ctrl-C from the run: the sweep forwards it once
                process = subprocess.Popen(
                    command,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    env=environment,
                    cwd=os.getcwd(),
                    start_new_session=True,
                )
                running[run.name] = (run, process, handle)
                log(f"started {run.name}: {_describe(run)}")
            time.sleep(0.5)
            for name, (run, process, handle) in list(running.items()):
                status = process.poll()
                if status is None:
                    continue
                handle.close()
                del running[name]
                result = read_result(os.path.join(sweep_dir, name))
                label = EXIT_LABELS.get(status, f"failed (exit {status}, see {name}.log)")
                rows[name] = _row(run, label, result if status in EXIT_LABELS else None)
                log(f"[{len(rows)}/{len(runs)}] {name} {label}: {_summary(rows[name])}")
    except KeyboardInterrupt:
        _stop_runs([process for _, process, _ in running.values()])
        for _, _, handle in running.values():
            handle.close()
        raise
    return [rows[run.name] for run in runs if run.name in rows]


def _stop_runs(processes: list) -> None:
    """Forwards Ctrl-C to each run (it finishes its step and saves) and waits for them all.

    A second Ctrl-C meanwhile forwards a second SIGINT, which stops the runs at once.
    """
    for process in processes:
        process.send_signal(signal.SIGINT)
    try:
        for process in processes:
            process.wait()
    except KeyboardInterrupt:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait()


def _describe(run: Run) -> str:
    return (
        " ".join(f"{field}={format_value(value)}" for field, value in run.values.items()) or "(no swept flag)"
    )


def _summary(row: dict) -> str:
    if row["modes_captured"] == "":
        return "no result"
    return (
        f"{row['modes_captured']}/{row['num_modes']} modes, {100 * row['high_quality_fraction']:.1f}% HQ, "
        f"KL {row['kl_uniform']:.3f}, trace {row['trace_mean']:.4f} (min {row['trace_min']:.4f}), "
        f"{row['seconds']:.0f} s"
    )


def build_sweep_parser() -> argparse.ArgumentParser:
    """The sweep's own flags; every other flag is a training flag with comma-separated values."""
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description=(
            "Train a grid of runs over training flags given with comma-separated values (e.g. "
            "--g-lr 1e-3,3e-4 --d-lr 1e-4,3e-4 --seed 0,1,2), several processes at a time, then write "
            "summary.csv, summary.md and heatmap.png to the sweep folder. On/off flags sweep as "
            "--reupload yes,no; alternatives of --critic-units are separated by ':'. Repeating a sweep "
            "with the same --name reuses its finished runs."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--jobs", type=int, default=1, help="training processes at a time")
    parser.add_argument(
        "--output-dir",
        default=os.path.join("results", "sweeps"),
        help="folder that receives the sweep folder",
    )
    parser.add_argument("--name", default=None, help="sweep folder name (default: sweep-<date>-<time>)")
    parser.add_argument(
        "--heatmap",
        default="g_lr,d_lr",
        help="the two config fields on the heatmap's axes (x,y); cells show the median over the rest",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the runs' commands and stop")
    return parser


def main(argv=None, log=None) -> int:
    """Runs a sweep from the command line; returns the exit status (2 for bad input)."""
    log = log or (lambda line: print(line, flush=True))
    argv = list(sys.argv[1:] if argv is None else argv)
    args, training_tokens = build_sweep_parser().parse_known_args(argv)
    try:
        if args.jobs < 1:
            raise SweepError(f"--jobs {args.jobs} is not allowed; use an integer ≥ 1")
        axes_fields = args.heatmap.split(",")
        known = {field.name for field in dataclasses.fields(TrainConfig)}
        if len(axes_fields) != 2 or any(field not in known for field in axes_fields):
            raise SweepError(
                f"--heatmap {args.heatmap!r} is not allowed; give two config fields, e.g. g_lr,d_lr"
            )
        if args.name is not None and not RUN_NAME_PATTERN.match(args.name):
            raise SweepError(f"--name {args.name!r} is not allowed; use letters, digits, '.', '_' and '-'")
        runs = plan_runs(parse_grid(training_tokens))
        name = args.name or time.strftime("sweep-%Y%m%d-%H%M%S")
        sweep_dir = os.path.join(args.output_dir, name)
        check_existing_runs(runs, sweep_dir)
    except SweepError as error:
        print(f"sweep.py: error: {error}", file=sys.stderr)
        return 2
    command = (
        shlex.join(["scripts/sweep.py", *argv])
        if args.name
        else shlex.join(["scripts/sweep.py", *argv, "--name", name])
    )
    if args.dry_run:
        for run in runs:
            log(f"{run.name}: {TRAIN_PROGRAM} {shlex.join(run.tokens)}")
        return 0
    try:
        os.makedirs(sweep_dir, exist_ok=True)
    except OSError as error:
        print(
            f"sweep.py: error: --output-dir {args.output_dir!r} cannot be written ({error})", file=sys.stderr
        )
        return 2
    write_atomic(
        os.path.join(sweep_dir, "sweep.json"),
        json.dumps({"command": command, "runs": [dataclasses.asdict(run) for run in runs]}, indent=2) + "\n",
    )
    log(f"sweep: {len(runs)} runs, {args.jobs} at a time -> {sweep_dir}")
    started = time.time()
    interrupted = False
    try:
        rows = run_sweep(runs, sweep_dir, jobs=args.jobs, log=log)
    except KeyboardInterrupt:
        interrupted = True
        results = {run.name: read_result(os.path.join(sweep_dir, run.name)) for run in runs}
        rows = [
            _row(run, _label(results[run.name], run.config["steps"]), results[run.name])
            for run in runs
            if results[run.name] is not None
        ]
    csv_path, markdown_path = write_tables(rows, sweep_dir, command)
    x_field, y_field = axes_fields
    heatmap_path = plots.plot_heatmap(
        os.path.join(sweep_dir, "heatmap.png"),
        heatmap_cells(rows, runs, x_field, y_field),
        x_field,
        y_field,
        title=f"{name}: median high-quality % (modes) over the other settings",
    )
    log("")
    log(markdown_runs(rows))
    log(f"\nsweep done in {time.time() - started:.0f} s: {csv_path}, {markdown_path}, {heatmap_path}")
    if interrupted:
        log(f"interrupted; continue with: {command}")
        return 130
    return 0 if all(row["status"] in ("ok", "reused") for row in rows) and len(rows) == len(runs) else 1
