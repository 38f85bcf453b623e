"""Figures of a run (matplotlib, Agg backend): samples over the target, mode counts, training curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import textwrap  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from qgan.runtime.files import save_atomic  # noqa: E402

CAPTURED_COLOUR = "tab:green"
MISSED_COLOUR = "tab:red"


def _set_title(axes, title: str, fontsize: float = 12.0) -> None:
    """Sets a title wrapped to the figure's width, so that no line runs past its edges."""
    width_points = axes.figure.get_figwidth() * 72
    characters = max(20, int(width_points / (0.6 * fontsize)))
    lines = [textwrap.fill(line, characters) for line in str(title).splitlines()]
    axes.set_title("\n".join(lines), fontsize=fontsize)


def _save(figure, path: str) -> str:
    figure.tight_layout()
    try:
        save_atomic(path, lambda temporary: figure.savefig(temporary, dpi=120, format="png"))
    finally:
        plt.close(figure)
    return path


def plot_samples(
    path,
    samples,
    target_points=None,
    centers=None,
    std=None,
    counts=None,
    title="",
    outcomes=None,
    axis_labels=("x (mode 0 ⟨x̂⟩, after readout)", "y (mode 1 ⟨x̂⟩, after readout)"),
    bounds=None,
):
    """Generated samples over the target: centres, 3·std circles, captured modes in green.

    Args:
        path: PNG file to write.
        samples: (N, 2) generated coordinates.
        target_points: optional (M, 2) real samples drawn faintly underneath.
        centers: optional (K, 2) mode centres.
        std: mode std; the circles have radius 3·std (drawn at least visibly large).
        counts: optional high-quality samples per mode; modes with a count > 0 are "captured".
        title: figure title.
        outcomes: optional (N,) detector outcome of each sample; samples are then coloured by it.
        axis_labels: what the two coordinates are.
        bounds: optional ((x min, x max), (y min, y max)) that frame the figure (a user's data);
            without them the frame is a square around the centres, or matplotlib's own.

    Returns:
        The path written.
    """
    figure, axes = plt.subplots(figsize=(6.6, 7.0))
    if target_points is not None:
        axes.scatter(*np.asarray(target_points).T, s=4, c="0.75", alpha=0.5, label="target samples")
    finite = np.all(np.isfinite(samples), axis=1)
    if outcomes is None:
        axes.scatter(*np.asarray(samples)[finite].T, s=4, c="tab:blue", alpha=0.5, label="generated samples")
    else:
        outcomes = np.asarray(outcomes)
        palette = plt.get_cmap("tab20")
        for order, outcome in enumerate(np.unique(outcomes[finite])):
            chosen = finite & (outcomes == outcome)
            axes.scatter(
                *np.asarray(samples)[chosen].T,
                s=4,
                color=palette(int(outcome) % 20),
                alpha=0.6,
                label="generated samples (colour: outcome)" if order == 0 else "_nolegend_",
            )
    if centers is not None:
        centers = np.asarray(centers)
        captured = np.asarray(counts) > 0 if counts is not None else np.zeros(len(centers), bool)
        for center, is_captured in zip(centers, captured):
            colour = CAPTURED_COLOUR if is_captured else MISSED_COLOUR
            if std:
                axes.add_patch(plt.Circle(center, 3 * std, fill=False, color=colour, lw=1.2))
        axes.scatter(*centers[captured].T, marker="x", s=60, c=CAPTURED_COLOUR, label="captured mode")
        axes.scatter(*centers[~captured].T, marker="x", s=60, c=MISSED_COLOUR, label="missed mode")
        span = np.abs(centers).max() + 1.0
        if finite.any():  # widen to show stray samples, but not so far that the modes shrink to dots
            reach = np.percentile(np.abs(np.asarray(samples)[finite]), 99.5) + 0.5
            span = min(max(span, reach), 3 * span)
        if bounds is None:
            axes.set_xlim(-span, span)
            axes.set_ylim(-span, span)
    if bounds is not None:
        axes.set_xlim(*bounds[0])
        axes.set_ylim(*bounds[1])
    axes.set_aspect("equal")
    axes.set_xlabel(axis_labels[0])
    axes.set_ylabel(axis_labels[1])
    _set_title(axes, title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=8, markerscale=2)
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_modes(path, samples, target_points, centers, std, title="", columns=None, window=5.0):
    """Every mode zoomed in: its target samples and the generated samples, ±window stds around its centre.

    The panels show what the 3·std rule cannot: a cluster's width, shape and offset against the
    target's (the 3·std circle is drawn in each).

    Args:
        path: PNG file to write.
        samples: (N, 2) generated coordinates.
        target_points: (M, 2) target samples.
        centers: (K, 2) mode centres.
        std: the modes' std.
        title: figure title.
        columns: panels per row (default: about √K).
        window: the half-width of each panel, in stds.

    Returns:
        The path written.
    """
    centers = np.asarray(centers)
    samples, target_points = np.asarray(samples), np.asarray(target_points)
    columns = columns or int(np.ceil(np.sqrt(len(centers))))
    rows = int(np.ceil(len(centers) / columns))
    figure, grid = plt.subplots(rows, columns, figsize=(2.0 * columns, 2.0 * rows + 0.8), squeeze=False)
    half = window * std
    for index, axes in enumerate(grid.ravel()):
        if index >= len(centers):
            axes.axis("off")
            continue
        center = centers[index]

        def near(points, center=center):
            return points[np.all(np.abs(points - center) <= half, axis=1)] - center

        axes.scatter(*near(target_points).T / std, s=2, c="0.6", alpha=0.5)
        axes.scatter(*near(samples).T / std, s=2, c="tab:blue", alpha=0.5)
        axes.add_patch(plt.Circle((0, 0), 3.0, fill=False, color=CAPTURED_COLOUR, lw=1.0))
        axes.set_xlim(-window, window)
        axes.set_ylim(-window, window)
        axes.set_aspect("equal")
        axes.set_xticks([-3, 0, 3])
        axes.set_yticks([-3, 0, 3])
        axes.tick_params(labelsize=6)
        axes.set_title(f"mode {index}", fontsize=7)
    figure.suptitle(title + "\ngrey: target, blue: generated; axes in stds from the centre", fontsize=9)
    return _save(figure, path)


def plot_outcomes(path, outcomes, num_outcomes, title=""):
    """How often each detector outcome was drawn (Born rule) among the evaluation samples.

    Args:
        path: PNG file to write.
        outcomes: (N,) outcome index of each sample.
        num_outcomes: number of possible outcomes (bars 0 … num_outcomes − 1).
        title: figure title.

    Returns:
        The path written.
    """
    outcomes = np.asarray(outcomes)
    frequencies = np.bincount(outcomes, minlength=num_outcomes)[:num_outcomes] / max(len(outcomes), 1)
    figure, axes = plt.subplots(figsize=(7.0, 4.0))
    palette = plt.get_cmap("tab20")
    positions = np.arange(num_outcomes)
    axes.bar(positions, frequencies, color=[palette(index % 20) for index in positions])
    uniform = axes.axhline(1 / num_outcomes, color="k", ls="--", lw=1, label="uniform over outcomes")
    used = frequencies[frequencies > 0]
    entropy = float(-np.sum(used * np.log(used)))
    axes.set_xlabel("detector outcome")
    axes.set_ylabel("fraction of samples")
    _set_title(axes, f"{title}\noutcome entropy {entropy:.2f} nats (uniform: {np.log(num_outcomes):.2f})")
    axes.legend(handles=[uniform], fontsize=8, loc="upper right")
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def plot_mode_counts(path, counts, num_samples, title=""):
    """High-quality samples per mode as bars, with the count a perfectly uniform generator would get.

    Args:
        path: PNG file to write.
        counts: high-quality samples per mode.
        num_samples: samples evaluated (sets the uniform reference).
        title: figure title.

    Returns:
        The path written.
    """
    counts = np.asarray(counts)
    figure, axes = plt.subplots(figsize=(7.0, 4.0))
    colours = [CAPTURED_COLOUR if count > 0 else MISSED_COLOUR for count in counts]
    bars = axes.bar(np.arange(len(counts)), counts, color=colours)
    axes.bar_label(bars, labels=[str(count) for count in counts], fontsize=8)
    uniform = axes.axhline(num_samples / len(counts), color="k", ls="--", lw=1)
    handles = [
        Patch(color=CAPTURED_COLOUR),
        Patch(color=MISSED_COLOUR),
        uniform,
    ]
    labels = ["captured mode", "missed mode (0)", "uniform over modes, all high quality"]
    axes.set_ylim(0, 1.3 * max(counts.max(), num_samples / len(counts)))
    axes.set_xlabel("mode index")
    axes.set_ylabel("high-quality samples")
    _set_title(axes, title)
    axes.legend(handles, labels, fontsize=8, loc="upper right")
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def _column(metrics, name):
    return np.array([np.nan if row.get(name) in (None, "") else float(row[name]) for row in metrics])


def plot_coverage(path, metrics, num_modes, title=""):
    """Modes captured, high-quality fraction and mode-histogram KL over training.

    Args:
        path: PNG file to write.
        metrics: list of metric rows (dicts with step, modes_captured, high_quality_fraction,
            kl_uniform).
        num_modes: number of target modes (the top of the modes axis).
        title: figure title.

    Returns:
        The path written.
    """
    steps = _column(metrics, "step")
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7.0, 6.0), sharex=True)
    top.plot(steps, _column(metrics, "modes_captured"), "o-", color="tab:blue", label="modes captured")
    top.set_ylim(0, num_modes + 0.5)
    top.set_ylabel(f"modes captured (of {num_modes})")
    twin = top.twinx()
    twin.plot(
        steps,
        100 * _column(metrics, "high_quality_fraction"),
        "s--",
        color="tab:orange",
        label="high-quality %",
    )
    twin.set_ylim(0, 100)
    twin.set_ylabel("high-quality samples (%)")
    lines = top.get_legend_handles_labels()
    twin_lines = twin.get_legend_handles_labels()
    top.legend(lines[0] + twin_lines[0], lines[1] + twin_lines[1], loc="upper left", fontsize=8)
    _set_title(top, title)
    top.grid(alpha=0.3)
    bottom.plot(
        steps,
        _column(metrics, "kl_uniform"),
        "o-",
        color="tab:purple",
        label="KL(mode histogram ‖ uniform)",
    )
    bottom.set_xlabel("generator step")
    bottom.set_ylabel("KL (nats)")
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3)
    return _save(figure, path)


def plot_training(path, metrics, title=""):
    """Losses, gradient norms and the Fock-space trace over training.

    Args:
        path: PNG file to write.
        metrics: list of metric rows (dicts with step, d_loss, g_loss, wasserstein, gp,
            d_grad_norm, g_grad_norm, trace_mean, trace_min, eval_trace_mean, eval_trace_min).
        title: figure title.

    Returns:
        The path written.
    """
    steps = _column(metrics, "step")
    figure, (losses, norms, traces) = plt.subplots(3, 1, figsize=(7.0, 8.5), sharex=True)
    for name, label in (
        ("d_loss", "critic loss"),
        ("g_loss", "generator loss"),
        ("wasserstein", "Wasserstein estimate"),
        ("gp", "gradient penalty (unweighted)"),
    ):
        losses.plot(steps, _column(metrics, name), "o-", ms=3, label=label)
    losses.set_ylabel("loss")
    _set_title(losses, title)
    losses.legend(fontsize=8)
    losses.grid(alpha=0.3)
    norm_values = []
    for name, label in (("d_grad_norm", "critic"), ("g_grad_norm", "generator")):
        values = _column(metrics, name)
        norm_values.append(values)
        norms.plot(steps, values, "o-", ms=3, label=f"{label} gradient norm (before clipping)")
    norm_values = np.concatenate(norm_values)
    if np.all(norm_values[np.isfinite(norm_values)] > 0):  # a log axis cannot show zeros
        norms.set_yscale("log")
    norms.set_ylabel("global L2 norm")
    norms.legend(fontsize=8)
    norms.grid(alpha=0.3)
    for name, label, style in (
        ("trace_mean", "training batches, mean", "o-"),
        ("trace_min", "training batches, min", "v:"),
        ("eval_trace_mean", "evaluation samples, mean", "s-"),
        ("eval_trace_min", "evaluation samples, min", "^:"),
    ):
        traces.plot(steps, _column(metrics, name), style, ms=3, label=label)
    traces.set_ylabel("Fock-space trace")
    traces.set_xlabel("generator step")
    traces.legend(fontsize=8)
    traces.grid(alpha=0.3)
    return _save(figure, path)


def plot_heatmap(path, cells, x_label, y_label, title=""):
    """A heatmap of the median high-quality percentage per (x, y) setting, annotated with modes.

    Args:
        path: PNG file to write.
        cells: {"x": values, "y": values, "hq": {(x, y): fraction}, "modes": {(x, y): modes}} and
            optionally "stopped": {(x, y): state} for pairs whose numbers come from stopped runs;
            pairs without a result are drawn blank.
        x_label: name of the horizontal setting.
        y_label: name of the vertical setting.
        title: figure title.

    Returns:
        The path written.
    """
    xs, ys = list(cells["x"]), list(cells["y"])
    grid = np.full((len(ys), len(xs)), np.nan)
    for (x, y), fraction in cells["hq"].items():
        grid[ys.index(y), xs.index(x)] = 100.0 * fraction
    figure, axes = plt.subplots(figsize=(1.6 + 1.3 * len(xs), 1.4 + 0.9 * len(ys)))
    image = axes.imshow(grid, origin="lower", cmap="viridis", vmin=0.0, vmax=100.0, aspect="auto")
    for (x, y), fraction in cells["hq"].items():
        row, column = ys.index(y), xs.index(x)
        text = f"{100 * fraction:.1f}%\n{cells['modes'][(x, y)]:g} modes"
        if (x, y) in cells.get("stopped", {}):
            text += f"\n({cells['stopped'][(x, y)]})"
        axes.text(
            column,
            row,
            text,
            ha="center",
            va="center",
            fontsize=8,
            color="white" if fraction < 0.6 else "black",
        )
    axes.set_xticks(
        range(len(xs)), [f"{value:g}" if isinstance(value, float) else str(value) for value in xs]
    )
    axes.set_yticks(
        range(len(ys)), [f"{value:g}" if isinstance(value, float) else str(value) for value in ys]
    )
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    _set_title(axes, title, fontsize=9)
    figure.colorbar(image, ax=axes, label="high-quality samples (%)")
    return _save(figure, path)


def plot_history(path, points, maximize=True, label="value", title=""):
    """A study's optimisation history: each finished trial's value and the best value so far.

    Args:
        path: PNG file to write.
        points: (trial number, value) of every finished trial.
        maximize: whether larger values are better.
        label: the objective's name, on the vertical axis.
        title: figure title.

    Returns:
        The path written.
    """
    points = sorted(points)
    figure, axes = plt.subplots(figsize=(6.0, 3.6))
    if points:
        numbers = [number for number, _ in points]
        values = [value for _, value in points]
        best = np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)
        axes.plot(numbers, values, "o", color="tab:blue", label="trial")
        axes.step(numbers, best, where="post", color="tab:red", label="best so far")
        axes.legend(loc="best", fontsize=8)
    else:
        axes.text(0.5, 0.5, "no finished trial yet", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("trial")
    axes.set_ylabel(label)
    _set_title(axes, title, fontsize=10)
    return _save(figure, path)


def plot_detector_study(
    path, curves, title="High-quality share against detector efficiency (median of seeds)"
):
    """Lines of the high-quality share over detector efficiency η, one per named curve.

    Args:
        path: the PNG to write.
        curves: {label: [(η, high-quality fraction), …]}; labels starting "trained ideal" are dashed.
        title: the figure's title.
    """
    figure, axes = plt.subplots(figsize=(7, 4.5))
    colours = {}
    for label, points in curves.items():
        points = sorted(points)
        if not points:
            continue
        nu = label.rsplit("ν", 1)[-1]
        colour = colours.setdefault(nu, f"C{len(colours)}")
        style = "--" if label.startswith("trained ideal") else "-"
        axes.plot(
            [eta for eta, _ in points],
            [100 * value for _, value in points],
            style,
            marker="o",
            color=colour,
            label=label,
        )
    axes.set_xlabel("detector efficiency η")
    axes.set_ylabel("high-quality samples (%)")
    axes.set_ylim(-2, 102)
    axes.invert_xaxis()
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    _set_title(axes, title, fontsize=11)
    return _save(figure, path)
