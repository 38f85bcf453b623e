"""Sweeps: a grid of training runs over flag values, run as parallel processes and tabulated."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import itertools
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time

import qgan
from qgan import plots
from qgan.cli import EXIT_GUARD_STOP, EXIT_INTERRUPTED, HelpFormatter, build_parser, config_from_args
from qgan.config import RUN_NAME_PATTERN, ConfigError, TrainConfig, conflicting_settings, flag_name
from qgan.files import write_atomic

TRAIN_PROGRAM = "scripts/train_coordinate_quantum_gan.py"
MANAGED_FLAGS = ("--results-dir", "--run-name", "--resume")
EXIT_LABELS = {0: "ok", EXIT_INTERRUPTED: "interrupted", EXIT_GUARD_STOP: "stopped by guard"}
LIST_VALUED = {"--critic-units"}  # a value is itself a comma list, so alternatives are split on ":"
BOOLEAN_WORDS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
COLUMNS = (
    "run",
    "status",
    "modes_captured",
    "num_modes",
    "high_quality_fraction",
    "kl_uniform",
    "trace_mean",
    "trace_min",
    "seconds",
)


class SweepError(ValueError):
    """A sweep that cannot run as asked; the message names the flag or value."""


@dataclasses.dataclass(frozen=True)
class Axis:
    """One swept training flag.

    Attributes:
        field: the TrainConfig field, e.g. "g_lr".
        options: per value, the command-line tokens that set it, e.g. (("--g-lr", "1e-3"), …).
    """

    field: str
    options: tuple[tuple[str, ...], ...]


@dataclasses.dataclass(frozen=True)
class Grid:
    """Training flags shared by every run, and the axes whose values are crossed."""

    fixed: tuple[str, ...]
    axes: tuple[Axis, ...]

    def points(self) -> list[tuple[str, ...]]:
        """The training flags of every run, the last axis varying fastest."""
        return [
            self.fixed + tuple(token for option in choice for token in option)
            for choice in itertools.product(*(axis.options for axis in self.axes))
        ]


def _training_actions() -> dict:
    return build_parser()._option_string_actions


def parse_grid(tokens: list[str]) -> Grid:
    """Reads training flags whose values may be comma-separated alternatives.

    `--g-lr 1e-3,3e-4` sweeps two values; `--reupload yes,no` sweeps an on/off flag;
    `--critic-units 64,64:128,128` separates alternatives of a list-valued flag with ":".

    Args:
        tokens: command-line tokens of train_coordinate_quantum_gan.py.

    Returns:
        The Grid.

    Raises:
        SweepError: an unknown flag, a missing value, a flag the sweep sets itself, or a repeated flag.
    """
    actions = _training_actions()
    fixed: list[str] = []
    axes: list[Axis] = []
    seen: set[str] = set()
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        flag, _, attached = token.partition("=")
        if not flag.startswith("--") or flag == "--":
            raise SweepError(f"unexpected argument {token!r}; give training flags such as --g-lr 1e-3,3e-4")
        action = actions.get(flag)
        if action is None or action.dest == "help":
            raise SweepError(f"unknown training flag {flag}; see {TRAIN_PROGRAM} --help")
        if flag in MANAGED_FLAGS or action.dest in ("results_dir", "run_name", "resume"):
            raise SweepError(f"{flag} is set by the sweep for each run; use --output-dir and --name instead")
        if action.dest in seen:
            raise SweepError(
                f"{flag_name(action.dest)} is given twice; give its alternatives once, comma separated"
            )
        seen.add(action.dest)
        value = attached or None
        takes_value = action.nargs != 0
        boolean = not takes_value and flag_name(action.dest) in action.option_strings
        if value is None and position < len(tokens) and not tokens[position].startswith("--"):
            if takes_value or boolean:
                value = tokens[position]
                position += 1
        if not takes_value:
            if value is None:
                fixed.append(flag)
                continue
            if not boolean:
                raise SweepError(f"{flag} takes no value, got {value!r}")
            options = []
            for word in value.split(","):
                if word.lower() not in BOOLEAN_WORDS:
                    raise SweepError(
                        f"{flag_name(action.dest)} value {word!r} is not allowed; "
                        "use yes or no (comma separated)"
                    )
                on = BOOLEAN_WORDS[word.lower()]
                options.append((flag_name(action.dest) if on else "--no-" + flag_name(action.dest)[2:],))
        else:
            if value is None or value == "":
                raise SweepError(f"{flag} needs a value (or comma-separated values to sweep)")
            separator = ":" if flag_name(action.dest) in LIST_VALUED else ","
            words = value.split(separator)
            if any(word == "" for word in words):
                raise SweepError(
                    f"{flag} {value!r} holds an empty alternative; separate values with {separator!r}"
                )
            options = [(flag_name(action.dest), word) for word in words]
        if len(options) == 1:
            fixed.extend(options[0])
        else:
            axes.append(Axis(action.dest, tuple(options)))
    return Grid(tuple(fixed), tuple(axes))


class _RaisingParser:
    """The training parser, raising SweepError instead of exiting on a bad flag."""

    def __init__(self):
        self.parser = build_parser()

        def fail(message):
            raise SweepError(message)

        self.parser.error = fail

    def config(self, tokens):
        try:
            return config_from_args(self.parser.parse_args(list(tokens)))
        except ConfigError as error:
            raise SweepError(str(error)) from None


@dataclasses.dataclass
class Run:
    """One run of a sweep.

    Attributes:
        name: run folder name inside the sweep folder.
        tokens: its training flags (without --results-dir and --run-name).
        values: the swept fields' values as written in its config, by field.
        config: its TrainConfig as a dict.
    """

    name: str
    tokens: tuple[str, ...]
    values: dict
    config: dict


def plan_runs(grid: Grid) -> list[Run]:
    """Validates every point of a grid and names its run.

    Raises:
        SweepError: the first run whose flags the training script would refuse, with its message.
    """
    parser = _RaisingParser()
    runs = []
    points = grid.points()
    digits = len(str(len(points)))
    for index, tokens in enumerate(points):
        try:
            config = parser.config(tokens)
        except SweepError as error:
            raise SweepError(f"run {index} ({shlex.join(tokens)}): {error}") from None
        settings = config.to_dict()
        values = {axis.field: settings[axis.field] for axis in grid.axes}
        runs.append(Run(f"run-{index:0{digits}d}", tokens, values, settings))
    return runs


def _format(value) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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
        **{field: _format(value) for field, value in run.values.items()},
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
    return " ".join(f"{field}={_format(value)}" for field, value in run.values.items()) or "(no swept flag)"


def _summary(row: dict) -> str:
    if row["modes_captured"] == "":
        return "no result"
    return (
        f"{row['modes_captured']}/{row['num_modes']} modes, {100 * row['high_quality_fraction']:.1f}% HQ, "
        f"KL {row['kl_uniform']:.3f}, trace {row['trace_mean']:.4f} (min {row['trace_min']:.4f}), "
        f"{row['seconds']:.0f} s"
    )


def table_columns(rows: list[dict]) -> list[str]:
    """The run name, the swept fields, then COLUMNS after "run"."""
    swept = [key for key in (rows[0] if rows else {}) if key not in COLUMNS]
    return ["run", *swept, *COLUMNS[1:]]


def csv_text(rows: list[dict]) -> str:
    """The per-run table as CSV."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=table_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _cell(value, digits: int) -> str:
    if value == "" or value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_runs(rows: list[dict]) -> str:
    """The per-run table as Markdown: modes, high-quality %, KL, trace mean/min and seconds."""
    columns = table_columns(rows)
    swept = columns[1 : columns.index("status")]
    header = ["run", *swept, "modes", "HQ %", "KL", "trace mean", "trace min", "s", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        hq = row["high_quality_fraction"]
        modes = f"{row['modes_captured']}/{row['num_modes']}" if row["modes_captured"] != "" else "–"
        cells = [
            row["run"],
            *(str(row[field]) for field in swept),
            modes,
            "–" if hq == "" else f"{100 * hq:.1f}",
            _cell(row["kl_uniform"], 3),
            _cell(row["trace_mean"], 4),
            _cell(row["trace_min"], 4),
            "–" if row["seconds"] == "" else f"{row['seconds']:.0f}",
            row["status"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_groups(rows: list[dict], over: str = "seed") -> str:
    """Median and minimum over the `over` field (seeds) of every other swept combination, as Markdown.

    Runs without a result are left out of the statistics and counted in the "runs" column.
    """
    columns = table_columns(rows)
    keys = [field for field in columns[1 : columns.index("status")] if field != over]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in keys), []).append(row)
    header = [
        *keys,
        "runs",
        "modes median",
        "modes min",
        "HQ % median",
        "HQ % min",
        "KL median",
        "KL max",
        "trace mean (min)",
        "trace min (min)",
        "s median",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, members in groups.items():
        done = [row for row in members if row["modes_captured"] != ""]
        cells = [*key, f"{len(done)}/{len(members)}"]
        if done:
            values = {name: [float(row[name]) for row in done] for name in COLUMNS[2:] if name != "num_modes"}
            cells += [
                f"{statistics.median(values['modes_captured']):g}/{done[0]['num_modes']}",
                f"{min(values['modes_captured']):g}",
                f"{100 * statistics.median(values['high_quality_fraction']):.1f}",
                f"{100 * min(values['high_quality_fraction']):.1f}",
                f"{statistics.median(values['kl_uniform']):.3f}",
                f"{max(values['kl_uniform']):.3f}",
                f"{min(values['trace_mean']):.4f}",
                f"{min(values['trace_min']):.4f}",
                f"{statistics.median(values['seconds']):.0f}",
            ]
        else:
            cells += ["–"] * (len(header) - len(cells))
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def write_tables(rows: list[dict], sweep_dir: str, command: str) -> tuple[str, str]:
    """summary.csv and summary.md (the command, the per-run table, and medians over seeds).

    Returns:
        The paths of the CSV and Markdown files.
    """
    csv_path = os.path.join(sweep_dir, "summary.csv")
    markdown_path = os.path.join(sweep_dir, "summary.md")
    write_atomic(csv_path, csv_text(rows))
    sections = [f"Reproduce with:\n\n    {command}\n", "## Runs\n\n" + markdown_runs(rows) + "\n"]
    if any(key == "seed" for key in table_columns(rows)):
        sections.append("## Over seeds\n\n" + markdown_groups(rows) + "\n")
    write_atomic(markdown_path, "\n".join(sections))
    return csv_path, markdown_path


def heatmap_cells(rows: list[dict], runs: list[Run], x_field: str, y_field: str) -> dict:
    """Median high-quality fraction and modes per (x, y) value pair, over every other setting.

    Args:
        rows: the sweep's rows.
        runs: its runs (for the values of fields that were not swept).
        x_field: config field on the horizontal axis (e.g. "g_lr").
        y_field: config field on the vertical axis (e.g. "d_lr").

    Returns:
        {"x": sorted x values, "y": sorted y values, "hq": {(x, y): median}, "modes": {(x, y): median}}.
    """
    by_name = {run.name: run for run in runs}
    cells: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["modes_captured"] == "":
            continue
        config = by_name[row["run"]].config
        cells.setdefault((config[x_field], config[y_field]), []).append(row)
    xs = sorted({run.config[x_field] for run in runs})
    ys = sorted({run.config[y_field] for run in runs})
    return {
        "x": xs,
        "y": ys,
        "hq": {
            key: statistics.median(float(row["high_quality_fraction"]) for row in members)
            for key, members in cells.items()
        },
        "modes": {
            key: statistics.median(float(row["modes_captured"]) for row in members)
            for key, members in cells.items()
        },
    }


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
