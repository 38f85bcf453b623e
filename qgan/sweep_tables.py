"""A sweep's tables (CSV, Markdown per run and per group over seeds) and its heatmap cells."""

from __future__ import annotations

import csv
import io
import os
import statistics

from qgan.files import write_atomic

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


def heatmap_cells(rows: list[dict], runs: list, x_field: str, y_field: str) -> dict:
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
