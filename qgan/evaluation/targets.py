"""Target distributions: the standard 2-D Gaussian mixtures and users' own coordinate files."""

from __future__ import annotations

import dataclasses
import os

import numpy as np


class DataError(ValueError):
    """A data or centres file that cannot be used, with a one-line reason."""


@dataclasses.dataclass(frozen=True)
class Target:
    """A 2-D target distribution with the centres its mode coverage is measured against.

    Attributes:
        name: short name used in titles and file names.
        centers: (modes, 2) array of mode centres, or None when coverage cannot be measured.
        std: per-axis standard deviation of each mode (the unit of the 3·std rule).
        points: (N, 2) array of data points for a file target, None for a mixture.
    """

    name: str
    centers: np.ndarray | None
    std: float | None
    points: np.ndarray | None = None

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """Draws n points: from the mixture (uniform over modes), or with replacement from the file.

        Args:
            n: number of points.
            seed: seed of the NumPy generator; the same seed gives the same points.

        Returns:
            float32 array of shape (n, 2).
        """
        rng = np.random.default_rng(seed)
        if self.points is not None:
            return self.points[rng.integers(0, len(self.points), size=n)].astype(np.float32)
        modes = rng.integers(0, len(self.centers), size=n)
        noise = rng.normal(0.0, self.std, size=(n, 2))
        return (self.centers[modes] + noise).astype(np.float32)


def ring(modes: int = 8, radius: float = 2.0, std: float = 0.02) -> Target:
    """Gaussians evenly spaced on a circle (8 on radius 2 with std 0.02 is the standard ring)."""
    angles = 2.0 * np.pi * np.arange(modes) / modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return Target(name="ring", centers=centers, std=std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Target:
    """Gaussians on a square lattice (5×5 at {-4,-2,0,2,4}² with std 0.05 is the standard grid)."""
    axis = spacing * (np.arange(side) - (side - 1) / 2.0)
    xs, ys = np.meshgrid(axis, axis, indexing="ij")
    centers = np.stack([xs.ravel(), ys.ravel()], axis=1)
    return Target(name="grid", centers=centers, std=std)


def load_points(path: str, what: str = "data file") -> np.ndarray:
    """Reads an N×2 array of finite coordinates from a .csv (comma separated) or .npy file.

    Args:
        path: file to read; a .csv may start with one header line.
        what: how to call the file in error messages.

    Returns:
        float64 array of shape (N, 2), N ≥ 1.

    Raises:
        DataError: missing, unreadable, empty, non-numeric, not two columns, or NaN/Inf rows.
    """
    if not os.path.isfile(path):
        raise DataError(f"{what} {path!r} does not exist (expected a .csv or .npy file of N×2 points)")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(f"{what} {path!r} is not a readable .npy array: {error}") from None
    elif extension == ".csv":
        array = _read_csv(path, what)
    else:
        raise DataError(f"{what} {path!r} has extension {extension!r}; allowed: .csv, .npy")
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} {path!r} does not hold numbers") from None
    if array.size == 0:
        raise DataError(f"{what} {path!r} is empty (expected N×2 points, N ≥ 1)")
    if array.ndim != 2 or array.shape[1] != 2:
        raise DataError(f"{what} {path!r} has shape {array.shape}; expected (N, 2): two columns x, y")
    bad_rows = np.flatnonzero(~np.all(np.isfinite(array), axis=1))
    if bad_rows.size:
        raise DataError(
            f"{what} {path!r} has {bad_rows.size} row(s) with NaN or Inf, first at row {bad_rows[0]}; "
            "all values must be finite"
        )
    return array


def _read_csv(path: str, what: str) -> np.ndarray:
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    if not lines:
        return np.empty((0, 2))
    rows = []
    for number, line in enumerate(lines):
        fields = [field.strip() for field in line.split(",")]
        try:
            rows.append([float(field) for field in fields])
        except ValueError:
            if number == 0:
                continue  # a header line
            raise DataError(f"{what} {path!r} line {number + 1} is not numeric: {line[:60]!r}") from None
    if not rows:
        return np.empty((0, 2))
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise DataError(f"{what} {path!r} has rows of different lengths {sorted(widths)}; expected 2")
    return np.array(rows)


def estimate_std(points: np.ndarray, centers: np.ndarray) -> float:
    """Per-axis standard deviation of points around their nearest centre (isotropic Gaussian fit)."""
    distances = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=2).min(axis=1)
    return float(np.sqrt(np.mean(distances**2) / 2.0))


def from_file(data_path: str, centers_path: str | None = None, std: float | None = None) -> Target:
    """A target made of a user's own points, with optional centres to measure coverage against.

    Args:
        data_path: .csv or .npy file of N×2 points.
        centers_path: optional .csv or .npy file of K×2 mode centres.
        std: per-axis mode std for the 3·std rule; estimated from the data when None.

    Returns:
        A Target that samples the file's points with replacement.
    """
    points = load_points(data_path, "data file")
    centers = None
    if centers_path is not None:
        centers = load_points(centers_path, "centres file")
        if std is None:
            std = estimate_std(points, centers)
        if std <= 0:
            raise DataError(
                f"centres file {centers_path!r} gives a mode std of {std:g} for the data; "
                "the data points must not all sit exactly on the centres (or pass --std > 0)"
            )
    name = os.path.splitext(os.path.basename(data_path))[0]
    return Target(name=name, centers=centers, std=std, points=points)
