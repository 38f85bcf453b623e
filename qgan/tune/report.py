"""A study's report from its storage alone: summary.csv, summary.md, plots and the best command."""

from __future__ import annotations

import csv
import io
import os
import shlex
import statistics

from optuna.trial import TrialState

from qgan.evaluation import plots
from qgan.runtime.files import write_atomic
from qgan.tune.runs import OBJECTIVES

COLUMNS = (
    "trial",
    "state",
    "value",
    "seeds_done",
    "modes_median",
    "modes_min",
    "hq_median",
    "hq_min",
    "kl_median",
    "kl_max",
    "std_ratio_median",
    "offset_median",
    "w1_ratio_median",
    "trace_mean_min",
    "trace_min_min",
    "seconds_median",
    "setting",
    "host",
)

FINISHED = ("completed", "guard-stop")  # states of a run, or a trial, that trained to its end


def _statistics(seeds: dict) -> dict:
    done = [result for result in seeds.values() if "trace_mean" in result]
    if not done:
        return {}

    def values(key):
        return [float(result[key]) if result.get(key) is not None else float("nan") for result in done]

    seconds = [value for value in (result.get("seconds") for result in done) if value is not None]

    def median_of(key):
        measured = [float(result[key]) for result in done if result.get(key) is not None]
        return statistics.median(measured) if measured else ""

    return {
        "std_ratio_median": median_of("std_ratio_median"),
        "offset_median": median_of("offset_median"),
        "w1_ratio_median": median_of("w1_ratio"),
        "modes_median": statistics.median(values("modes_captured")),
        "modes_min": min(values("modes_captured")),
        "hq_median": statistics.median(values("high_quality_fraction")),
        "hq_min": min(values("high_quality_fraction")),
        "kl_median": statistics.median(values("kl_uniform")),
        "kl_max": max(values("kl_uniform")),
        "trace_mean_min": min(values("trace_mean")),
        "trace_min_min": min(values("trace_min")),
        "seconds_median": statistics.median(seconds) if seconds else "",
        "num_modes": done[0]["num_modes"],
    }


def trial_rows(study) -> tuple[list[dict], list[str]]:
    """One row per trial that ran (skipped duplicates left out), and the parameter names.

    Every number comes from the storage (the trials' attributes), not from the run folders.
    """
    trials = [
        trial
        for trial in study.get_trials(deepcopy=False)
        if trial.state != TrialState.WAITING and "skipped" not in trial.user_attrs
    ]
    names: list[str] = []
    for trial in trials:
        names += [name for name in trial.params if name not in names]
    rows = []
    for trial in trials:
        seeds = trial.user_attrs.get("seeds", {})
        row = {
            "trial": trial.number,
            **{name: trial.params.get(name, "") for name in names},
            "state": trial.user_attrs.get("status", trial.state.name.lower()),
            "value": "" if trial.value is None else trial.value,
            "seeds_done": sum(result.get("status") in FINISHED for result in seeds.values()),
            "setting": trial.user_attrs.get("setting", ""),
            "host": trial.user_attrs.get("host", ""),
        }
        row.update(_statistics(seeds))
        rows.append(row)
    return rows, names


def _csv_text(rows: list[dict], names: list[str]) -> str:
    buffer = io.StringIO()
    columns = ["trial", *names, *COLUMNS[1:]]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _cell(value, form: str) -> str:
    if value == "" or value is None:
        return "–"
    return format(value, form)


def markdown_table(rows: list[dict], names: list[str], seeds: int) -> str:
    """Per trial: its parameters, state, objective, and the median and worst over seeds."""
    header = [
        "trial", *names, "state", "value", "seeds", "modes median (min)", "HQ % median (min)",
        "KL median (max)", "std ratio", "offset (std)", "W1 ×ref", "trace mean (min)", "s median",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        has = "hq_median" in row
        cells = [
            str(row["trial"]),
            *(str(row[name]) for name in names),
            row["state"],
            _cell(row["value"], ".4g"),
            f"{row['seeds_done']}/{seeds}",
            f"{row['modes_median']:g}/{row['num_modes']} ({row['modes_min']:g})" if has else "–",
            f"{100 * row['hq_median']:.1f} ({100 * row['hq_min']:.1f})" if has else "–",
            f"{row['kl_median']:.3f} ({row['kl_max']:.3f})" if has else "–",
            _cell(row.get("std_ratio_median"), ".2f"),
            _cell(row.get("offset_median"), ".2f"),
            _cell(row.get("w1_ratio_median"), ".2f"),
            f"{row['trace_mean_min']:.4f} ({row['trace_min_min']:.4f})" if has else "–",
            _cell(row.get("seconds_median", ""), ".0f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_command(study, seeds: tuple[int, ...]) -> str | None:
    """The best trial's setting as a ready qgan-train command, None before a trial completes."""
    completed = [trial for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not completed:
        return None
    best = study.best_trial
    return shlex.join(["qgan-train", *best.user_attrs["flags"], "--seed", str(seeds[0])])


def _axis_values(values: list) -> list:
    """The values of a heatmap axis: numbers when every value is one (so they sort by size)."""
    try:
        return [float(value) for value in values]
    except (TypeError, ValueError):
        return [str(value) for value in values]


def heatmap_cells(rows: list[dict], x_name: str, y_name: str) -> dict:
    """Median high-quality fraction and modes per (x, y) parameter pair, over the other parameters.

    A pair's finished trials speak for it; a pair with none (all pruned or interrupted) shows its
    stopped trials' last numbers and is named in "stopped" with their state.
    """
    done = [row for row in rows if "hq_median" in row and row[x_name] != "" and row[y_name] != ""]
    xs = _axis_values([row[x_name] for row in done])
    ys = _axis_values([row[y_name] for row in done])
    cells: dict[tuple, list[dict]] = {}
    for x, y, row in zip(xs, ys, done):
        cells.setdefault((x, y), []).append(row)
    stopped = {}
    for key, members in cells.items():
        finished = [row for row in members if row["state"] in FINISHED]
        if finished:
            cells[key] = finished
        else:
            stopped[key] = "/".join(sorted({row["state"] for row in members}))
    return {
        "x": sorted(set(xs)),
        "y": sorted(set(ys)),
        "hq": {key: statistics.median(row["hq_median"] for row in members) for key, members in cells.items()},
        "modes": {
            key: statistics.median(row["modes_median"] for row in members) for key, members in cells.items()
        },
        "stopped": stopped,
    }


def write_report(study, study_dir: str, seeds: tuple[int, ...], command: str, heatmap=None) -> list[str]:
    """Writes summary.csv, summary.md, history.png and (for two parameters) heatmap.png.

    Args:
        study: the Optuna study (read from its storage).
        study_dir: the folder that receives the files.
        seeds: the study's seeds.
        command: the qgan-tune command that continues the study.
        heatmap: the two parameter names of the heatmap's axes, or None for none.

    Returns:
        The paths written.
    """
    os.makedirs(study_dir, exist_ok=True)
    rows, names = trial_rows(study)
    objective = study.user_attrs.get("objective", "high-quality")
    paths = [os.path.join(study_dir, "summary.csv"), os.path.join(study_dir, "summary.md")]
    write_atomic(paths[0], _csv_text(rows, names))
    sections = [
        f"# Study {study.study_name}\n",
        f"Continue it with:\n\n    {command}\n",
        f"Objective: {objective} ({OBJECTIVES[objective][1]}), median over seeds {list(seeds)}.\n",
        markdown_table(rows, names, len(seeds)) + "\n",
    ]
    best = best_command(study, seeds)
    if best:
        sections.append(
            f"Best: trial {study.best_trial.number}, value {study.best_trial.value:.4g}:\n\n    {best}\n"
        )
    write_atomic(paths[1], "\n".join(sections))
    finished = [(row["trial"], row["value"]) for row in rows if row["value"] != ""]
    paths.append(
        plots.plot_history(
            os.path.join(study_dir, "history.png"),
            finished,
            maximize=OBJECTIVES[objective][1] == "maximize",
            label=objective,
            title=f"{study.study_name}: {objective} per trial",
        )
    )
    if heatmap:
        x_name, y_name = heatmap
        paths.append(
            plots.plot_heatmap(
                os.path.join(study_dir, "heatmap.png"),
                heatmap_cells(rows, x_name, y_name),
                x_name,
                y_name,
                title=f"{study.study_name}: median high-quality % (modes) over the other parameters",
            )
        )
    return paths
