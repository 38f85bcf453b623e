"""Distribution fidelity of 2-D samples: each mode's width and offset, and a mode-conditional W1 distance."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from qgan.evaluation.coverage import assign_modes

#: independent fresh target samples the distance is averaged over (its noise falls as 1/√repeats)
DISTANCE_REPEATS = 3


@dataclasses.dataclass(frozen=True)
class FidelityReport:
    """How closely samples follow the target's distribution, not only its modes.

    Attributes:
        std_ratios: per mode, the std of its high-quality samples over the target's std (per axis,
            the root of the mean of the two axes' variances); None for a mode with fewer than two.
        offsets: per mode, the distance from its centre of the mean of the samples nearest to it
            (its Voronoi cell, so that the truncation of the 3·std rule does not pull the mean
            back), in target stds; None for a mode that no sample is nearest to.
        w1: the two-sample distance to fresh target samples (see `distance`), in target stds.
        w1_reference: the same statistic between two independent target samples of the same size.
    """

    std_ratios: tuple
    offsets: tuple
    w1: float | None = None
    w1_reference: float | None = None

    def _measured(self, values):
        return [value for value in values if value is not None]

    @property
    def std_ratio_median(self) -> float | None:
        values = self._measured(self.std_ratios)
        return float(np.median(values)) if values else None

    @property
    def std_ratio_min(self) -> float | None:
        values = self._measured(self.std_ratios)
        return float(min(values)) if values else None

    @property
    def std_ratio_max(self) -> float | None:
        values = self._measured(self.std_ratios)
        return float(max(values)) if values else None

    @property
    def offset_median(self) -> float | None:
        values = self._measured(self.offsets)
        return float(np.median(values)) if values else None

    @property
    def offset_max(self) -> float | None:
        values = self._measured(self.offsets)
        return float(max(values)) if values else None

    @property
    def w1_ratio(self) -> float | None:
        if self.w1 is None or not self.w1_reference:
            return None
        return self.w1 / self.w1_reference

    def summary(self) -> dict:
        """The report's headline numbers (the metrics.csv columns FIDELITY_COLUMNS), None where unmeasured."""
        return {column: getattr(self, column) for column in FIDELITY_COLUMNS}

    def as_dict(self) -> dict:
        """The report as JSON-ready plain Python values, per-mode lists included."""
        return self.summary() | {"std_ratios": list(self.std_ratios), "offsets": list(self.offsets)}


FIDELITY_COLUMNS = (
    "std_ratio_median",
    "std_ratio_min",
    "std_ratio_max",
    "offset_median",
    "offset_max",
    "w1",
    "w1_reference",
    "w1_ratio",
)


def mode_shapes(samples, centers, std: float, threshold: float = 3.0) -> tuple[tuple, tuple]:
    """Each mode's std ratio (from its high-quality samples) and offset (from its Voronoi cell).

    Args:
        samples: (N, 2) points; rows with NaN/Inf are ignored.
        centers: (K, 2) mode centres.
        std: the target's per-axis std of each mode.
        threshold: the high-quality radius in stds.

    Returns:
        (std ratios, offsets in stds), each a tuple of K floats, None for too few samples.
    """
    samples = np.asarray(samples, np.float64)
    centers = np.asarray(centers, np.float64)
    nearest, high_quality = assign_modes(samples, centers, std, threshold)
    finite = np.all(np.isfinite(samples), axis=1)
    ratios, offsets = [], []
    for mode, centre in enumerate(centers):
        in_cell = samples[finite & (nearest == mode)]
        offsets.append(float(np.linalg.norm(in_cell.mean(axis=0) - centre) / std) if len(in_cell) else None)
        chosen = samples[high_quality & (nearest == mode)]
        if len(chosen) < 2:
            ratios.append(None)
            continue
        variance = np.mean(np.var(chosen, axis=0, ddof=1))
        ratios.append(float(np.sqrt(variance) / std))
    return tuple(ratios), tuple(offsets)


def _ot():
    # POT imports every array library it finds; qgan's evaluation uses its NumPy backend alone
    os.environ.setdefault("POT_BACKEND_DISABLE_TENSORFLOW", "1")
    os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1")
    os.environ.setdefault("POT_BACKEND_DISABLE_JAX", "1")
    os.environ.setdefault("POT_BACKEND_DISABLE_CUPY", "1")
    import ot

    return ot


def wasserstein1(first, second) -> float:
    """Exact W1 (earth mover's distance, Euclidean ground cost) between two point clouds of equal weights."""
    ot = _ot()
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    cost = ot.dist(first, second, metric="euclidean")
    return float(ot.emd2(np.full(len(first), 1 / len(first)), np.full(len(second), 1 / len(second)), cost))


def distance(samples, reference, centers=None) -> float:
    """The two-sample distance of qgan's fidelity: W1, conditional on the nearest mode when centres are known.

    With centres, both clouds are split by their nearest centre (Voronoi cells) and the distance is
    the average over modes, weighted by the reference's share of each, of the exact W1 between the
    two clouds' points in that mode. The mixture weights, which mode coverage and KL already
    measure, then do not swamp the modes' shapes: with 2,500 points on the ring, the count noise
    alone gives an unconditional W1 of about 0.1, five times the modes' std. Modes that hold no
    sample of `samples` are left out (coverage counts them). Without centres it is the plain
    exact W1 of the two clouds.

    Args:
        samples: (N, 2) generated points (non-finite rows are dropped).
        reference: (M, 2) target points.
        centers: optional (K, 2) mode centres.

    Returns:
        The distance, in the points' units (NaN when no mode holds points of both clouds).
    """
    samples = np.asarray(samples, np.float64)
    samples = samples[np.all(np.isfinite(samples), axis=1)]
    reference = np.asarray(reference, np.float64)
    if len(samples) == 0:
        return float("nan")
    if centers is None:
        return wasserstein1(samples, reference)
    centers = np.asarray(centers, np.float64)
    sample_modes = np.argmin(np.linalg.norm(samples[:, None] - centers[None], axis=2), axis=1)
    reference_modes = np.argmin(np.linalg.norm(reference[:, None] - centers[None], axis=2), axis=1)
    total, weight = 0.0, 0.0
    for mode in range(len(centers)):
        ours, theirs = samples[sample_modes == mode], reference[reference_modes == mode]
        if len(ours) and len(theirs):
            total += len(theirs) * wasserstein1(ours, theirs)
            weight += len(theirs)
    return total / weight if weight else float("nan")


def fidelity_report(samples, draw_target, centers, std, reference_pair=None, repeats=DISTANCE_REPEATS):
    """The FidelityReport of samples against a target with known centres and std.

    Args:
        samples: (N, 2) generated points.
        draw_target: draw_target(n, index) → (n, 2) fresh target points, index 0, 1, … giving
            independent draws (the same index, the same points).
        centers: (K, 2) mode centres.
        std: per-axis std of each mode.
        reference_pair: a precomputed w1_reference (it depends on N and the target alone), or None.
        repeats: fresh target samples the distance is averaged over.

    Returns:
        The FidelityReport; distances in target stds.
    """
    samples = np.asarray(samples, np.float64)
    ratios, offsets = mode_shapes(samples, centers, std)
    count = len(samples)
    w1 = np.mean([distance(samples, draw_target(count, index), centers) for index in range(repeats)]) / std
    if reference_pair is None:
        reference_pair = reference_distance(draw_target, count, centers, std, repeats)
    return FidelityReport(ratios, offsets, float(w1), reference_pair)


def reference_distance(draw_target, count: int, centers, std, repeats=DISTANCE_REPEATS) -> float:
    """The distance between two independent target samples of `count` points, averaged over `repeats` pairs.

    It uses draws repeats, repeats + 1, … of draw_target, which fidelity_report's own draws (0 …
    repeats − 1) do not touch, and is in target stds.
    """
    values = [
        distance(
            draw_target(count, repeats + 2 * index), draw_target(count, repeats + 2 * index + 1), centers
        )
        for index in range(repeats)
    ]
    return float(np.mean(values) / std)


#: fresh target draws of the fidelity meter use seeds (seed, FRESH_DRAWS + index): never a training batch's
FRESH_DRAWS = 2**40


class FidelityMeter:
    """The fidelity of a run's evaluations against its target, the reference distance computed once.

    For a mixture (ring, grid) the distance is to fresh target samples and the unit is the modes'
    std. For a user's file it is to the points held out of training (`Target.heldout`), and its
    reference is the same statistic between training points drawn as many as the samples and
    the held-out points; the unit is the mode std when centres are given, the data's own otherwise.

    Args:
        target: the run's Target.
        count: samples per evaluation.
        seed: the run's seed.
    """

    def __init__(self, target, count: int, seed: int):
        self.target = target
        self.centers = target.centers
        self.unit = target.std if target.centers is not None else 1.0
        if target.points is None:
            self.draw = lambda n, index: target.sample(n, seed=(seed, FRESH_DRAWS + index))
            self.reference = reference_distance(self.draw, count, self.centers, self.unit)
        elif target.heldout is not None:
            heldout = target.heldout
            self.draw = None
            values = [
                distance(target.sample(count, seed=(seed, FRESH_DRAWS + index)), heldout, self.centers)
                for index in range(DISTANCE_REPEATS)
            ]
            self.reference = float(np.mean(values) / self.unit)
        else:
            self.draw = self.reference = None

    def measure(self, samples) -> FidelityReport | None:
        """The FidelityReport of an evaluation's samples; None for a file without centres or held-out."""
        if self.draw is not None:
            return fidelity_report(samples, self.draw, self.centers, self.unit, self.reference)
        ratios, offsets = (
            mode_shapes(samples, self.centers, self.unit) if self.centers is not None else ((), ())
        )
        if self.reference is not None:
            w1 = distance(samples, self.target.heldout, self.centers) / self.unit
            return FidelityReport(ratios, offsets, float(w1), self.reference)
        return FidelityReport(ratios, offsets) if self.centers is not None else None
