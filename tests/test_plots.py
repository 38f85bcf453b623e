"""Tests of qgan.plots: every figure is written as a non-trivial PNG from plain NumPy inputs."""

import numpy as np

from qgan import plots
from qgan.targets import ring

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path):
    with open(path, "rb") as handle:
        data = handle.read()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
    return data


def metric_rows():
    rows = []
    for step in (10, 20, 30):
        rows.append(
            dict(
                step=step,
                modes_captured=step // 10 + 2,
                high_quality_fraction=step / 100,
                kl_uniform=1 / step,
                d_loss=-0.1 * step,
                g_loss=0.2,
                wasserstein=0.5,
                gp=0.01,
                d_grad_norm=3.0,
                g_grad_norm=0.5,
                trace_mean=0.999,
                trace_min=0.99,
                eval_trace_mean=0.998,
                eval_trace_min=None,
            )
        )
    return rows


def test_every_plot_writes_a_png(tmp_path):
    target = ring()
    samples = target.sample(500, seed=0) + np.random.default_rng(0).normal(0, 0.2, (500, 2))
    samples[0] = np.nan
    counts = (10, 0, 3, 0, 5, 6, 7, 8)
    written = [
        plots.plot_samples(
            str(tmp_path / "samples.png"),
            samples,
            target.sample(500, seed=1),
            target.centers,
            target.std,
            counts,
            title="samples",
        ),
        plots.plot_mode_counts(str(tmp_path / "counts.png"), counts, 500, title="counts"),
        plots.plot_coverage(str(tmp_path / "coverage.png"), metric_rows(), 8, title="coverage"),
        plots.plot_training(str(tmp_path / "training.png"), metric_rows(), title="training"),
    ]
    for path in written:
        read_png(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counts.png",
        "coverage.png",
        "samples.png",
        "training.png",
    ]


def test_samples_without_centres(tmp_path):
    path = plots.plot_samples(str(tmp_path / "s.png"), np.zeros((10, 2)), title="no centres")
    read_png(path)
