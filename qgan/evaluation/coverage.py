"""Mode coverage of 2-D samples against known mode centres (VEEGAN/PacGAN protocol)."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class CoverageReport:
    """How well samples cover the modes of a mixture.

    Attributes:
        modes_captured: modes that are the nearest centre of at least one high-quality sample.
        num_modes: number of centres.
        high_quality_fraction: share of samples within threshold·std of their nearest centre.
        counts: high-quality samples per mode, in the order of the centres.
        kl_uniform: KL(p ‖ uniform) in nats, p the high-quality samples' mode histogram;
            log(num_modes) when there is no high-quality sample at all.
        num_samples: number of samples evaluated.
    """

    modes_captured: int
    num_modes: int
    high_quality_fraction: float
    counts: tuple[int, ...]
    kl_uniform: float
    num_samples: int

    def as_dict(self) -> dict:
        """The report as JSON-ready plain Python values."""
        return dataclasses.asdict(self) | {"counts": list(self.counts)}


def assign_modes(samples, centers, std: float, threshold: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's nearest centre, and whether it lies within threshold·std of it.

    Args:
        samples: (N, 2) points; a row with NaN/Inf is never high quality.
        centers: (K, 2) mode centres.
        std: per-axis standard deviation of each mode.
        threshold: the high-quality radius in stds.

    Returns:
        ((N,) int nearest-centre indices, (N,) bool high quality).
    """
    samples = np.asarray(samples, np.float64)
    finite = np.all(np.isfinite(samples), axis=1)
    distances = np.linalg.norm(samples[:, None, :] - np.asarray(centers, np.float64)[None, :, :], axis=2)
    distances[~finite] = np.inf
    nearest = np.argmin(distances, axis=1)
    high_quality = distances[np.arange(len(samples)), nearest] <= threshold * std
    return nearest, high_quality


def mode_coverage(
    samples: np.ndarray, centers: np.ndarray, std: float, threshold: float = 3.0
) -> CoverageReport:
    """Measures mode coverage: a sample is high quality within threshold·std of its nearest centre.

    Args:
        samples: (N, 2) generated points; rows with NaN/Inf count as low quality.
        centers: (K, 2) mode centres.
        std: per-axis standard deviation of each mode.
        threshold: the number of stds that makes a sample high quality (3 in the literature).

    Returns:
        The CoverageReport.

    Raises:
        ValueError: samples or centres not of shape (N, 2) / (K, 2), no centre, or std ≤ 0.
    """
    samples = np.asarray(samples, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    for name, array, rows in (("samples", samples, "N"), ("centers", centers, "K")):
        if array.ndim != 2 or array.shape[1] != 2:
            raise ValueError(f"mode_coverage: {name} have shape {array.shape}; allowed: ({rows}, 2)")
    if len(centers) == 0:
        raise ValueError("mode_coverage needs at least one centre")
    if not std > 0:
        raise ValueError(f"mode_coverage needs std > 0, got {std!r}")
    nearest, high_quality = assign_modes(samples, centers, std, threshold)
    counts = np.bincount(nearest[high_quality], minlength=len(centers))
    total = int(counts.sum())
    if total:
        probabilities = counts[counts > 0] / total
        kl = float(np.sum(probabilities * np.log(probabilities * len(centers))))
    else:
        kl = float(np.log(len(centers)))
    return CoverageReport(
        modes_captured=int(np.count_nonzero(counts)),
        num_modes=len(centers),
        high_quality_fraction=float(total / len(samples)) if len(samples) else 0.0,
        counts=tuple(int(count) for count in counts),
        kl_uniform=kl,
        num_samples=len(samples),
    )
