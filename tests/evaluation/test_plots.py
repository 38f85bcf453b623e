"""Tests of qgan.evaluation.plots: every figure is written as a non-trivial PNG from plain NumPy inputs."""

import numpy as np

from qgan.evaluation import plots
from qgan.evaluation.targets import ring

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


LONG_TITLE = (
    "step 6000: 3/8 modes, 21.2% high quality, KL 1.081\nring, fock engine, 2 modes, 4 layers, cutoff 12, "
    "re-uploading, heralded on 1 pnr ancilla (12 outcomes, xp) (68 parameters)"
)


def test_long_titles_fit_inside_every_figure(tmp_path, monkeypatch):
    overflow = []
    original = plots._save

    def measure_then_save(figure, path):
        figure.tight_layout()
        renderer = figure.canvas.get_renderer()
        for axes in figure.axes:
            box = axes.title.get_window_extent(renderer)
            if axes.get_title() and (box.x0 < -0.5 or box.x1 > figure.bbox.x1 + 0.5):
                overflow.append((path, box.x0, box.x1, figure.bbox.x1))
        return original(figure, path)

    monkeypatch.setattr(plots, "_save", measure_then_save)
    target = ring()
    samples = target.sample(300, seed=0)
    plots.plot_samples(
        str(tmp_path / "s.png"), samples, None, target.centers, target.std, [1] * 8, LONG_TITLE
    )
    plots.plot_mode_counts(str(tmp_path / "m.png"), [1] * 8, 300, title=LONG_TITLE)
    plots.plot_coverage(str(tmp_path / "c.png"), metric_rows(), 8, title=LONG_TITLE)
    plots.plot_training(str(tmp_path / "t.png"), metric_rows(), title=LONG_TITLE)
    plots.plot_outcomes(str(tmp_path / "o.png"), np.arange(300) % 12, 12, title=LONG_TITLE)
    assert overflow == []


def test_outcome_plot_and_samples_coloured_by_outcome(tmp_path):
    outcomes = np.repeat(np.arange(3), [50, 30, 20])
    read_png(plots.plot_outcomes(str(tmp_path / "o.png"), outcomes, 12, title="outcomes"))
    samples = np.random.default_rng(0).normal(size=(100, 2))
    read_png(plots.plot_samples(str(tmp_path / "s.png"), samples, title="by outcome", outcomes=outcomes))
