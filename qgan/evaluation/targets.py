"""Target distributions: the standard 2-D Gaussian mixtures and users' own coordinate files."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from qgan.runtime.errors import InputError, first_line

NPY_MAGIC = b"\x93NUMPY"


class DataError(InputError):
    """A data or centres file that cannot be used, with a one-line reason."""


@dataclasses.dataclass(frozen=True)
class Target:
    """A 2-D target distribution with the centres its mode coverage is measured against.

    Attributes:
        name: short name used in titles and file names.
        centers: (modes, 2) array of mode centres, or None when coverage cannot be measured.
        std: per-axis standard deviation of each mode (the unit of the 3·std rule).
        points: (N, 2) array of the training points of a file target, None for a mixture.
        heldout: (M, 2) points of the file held out of training, to measure fidelity on; None
            for a mixture or when nothing is held out.
        columns: the file's column names (from its header), or None.
    """

    name: str
    centers: np.ndarray | None
    std: float | None
    points: np.ndarray | None = None
    heldout: np.ndarray | None = None
    columns: tuple[str, str] | None = None

    def sample(self, n: int, seed=None) -> np.ndarray:
        """Draws n points: from the mixture (uniform over modes), or with replacement from the file.

        Args:
            n: number of points.
            seed: seed of the NumPy generator (an int or a tuple of ints); the same seed gives the
                same points.

        Returns:
            float32 array of shape (n, 2).
        """
        rng = np.random.default_rng(seed)
        if self.points is not None:
            return self.points[rng.integers(0, len(self.points), size=n)].astype(np.float32)
        modes = rng.integers(0, len(self.centers), size=n)
        noise = rng.normal(0.0, self.std, size=(n, 2))
        return (self.centers[modes] + noise).astype(np.float32)

    def bounds(self, margin: float = 0.1) -> tuple[tuple[float, float], tuple[float, float]]:
        """The (x, y) limits that frame the target: its points or centres ± 3 std, widened by `margin`."""
        if self.points is not None:
            corners = np.concatenate([self.points, self.heldout if self.heldout is not None else self.points])
        else:
            corners = np.concatenate([self.centers - 3 * self.std, self.centers + 3 * self.std])
        low, high = corners.min(axis=0), corners.max(axis=0)
        pad = margin * np.maximum(high - low, 1e-9)
        return (
            (float(low[0] - pad[0]), float(high[0] + pad[0])),
            (float(low[1] - pad[1]), float(high[1] + pad[1])),
        )


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


def check_readable(path: str, what: str) -> None:
    """Raises DataError unless `path` is an existing, readable file (not a folder)."""
    if os.path.isdir(path):
        raise DataError(f"{what} {path!r} is a folder; give a .csv or .npy file of N×2 points")
    if not os.path.exists(path):
        raise DataError(f"{what} {path!r} does not exist (expected a .csv or .npy file of N×2 points)")
    if not os.access(path, os.R_OK):
        raise DataError(f"{what} {path!r} cannot be read (permission denied)")


def load_points(path: str, what: str = "data file") -> np.ndarray:
    """Reads an N×2 array of finite coordinates from a .csv (comma separated) or .npy file.

    Args:
        path: file to read; a .csv may start with one header line.
        what: how to call the file in error messages.

    Returns:
        float64 array of shape (N, 2), N ≥ 1.

    Raises:
        DataError: missing, a folder, unreadable, not what its extension says, not UTF-8 text,
            empty, non-numeric, not two columns, or NaN/Inf rows. Nothing else escapes.
    """
    return load_points_and_columns(path, what)[0]


def load_points_and_columns(path: str, what: str = "data file") -> tuple[np.ndarray, tuple[str, str] | None]:
    """load_points, and the column names of a .csv file's header (None without one, or for .npy)."""
    check_readable(path, what)
    extension = os.path.splitext(path)[1].lower()
    columns = None
    if extension == ".npy":
        array = _read_npy(path, what)
    elif extension == ".csv":
        array, columns = _read_csv(path, what)
    else:
        raise DataError(f"{what} {path!r} has extension {extension!r}; allowed: .csv, .npy")
    if array.dtype.kind not in "iuf":
        raise DataError(f"{what} {path!r} holds {array.dtype} values; expected real numbers")
    array = np.asarray(array, dtype=np.float64)
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
    return array, columns


def _read_npy(path: str, what: str) -> np.ndarray:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(NPY_MAGIC))
            if magic != NPY_MAGIC:
                raise DataError(
                    f"{what} {path!r} is not a NumPy .npy file (it lacks NumPy's header); "
                    "a text file of points should be a .csv"
                )
            handle.seek(0)
            return np.load(handle, allow_pickle=False)
    except DataError:
        raise
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(f"{what} {path!r} holds Python objects, not an array of numbers") from None
        raise DataError(f"{what} {path!r} is a damaged .npy file ({first_line(error)})") from None
    except (OSError, EOFError) as error:
        raise DataError(f"{what} {path!r} is a damaged .npy file ({first_line(error)})") from None


def _read_csv(path: str, what: str) -> tuple[np.ndarray, tuple[str, str] | None]:
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = [line.strip() for line in handle]
    except UnicodeDecodeError as error:
        raise DataError(
            f"{what} {path!r} is not UTF-8 text (byte 0x{error.object[error.start]:02x} at position "
            f"{error.start}); save it as UTF-8 CSV"
        ) from None
    except OSError as error:
        raise DataError(f"{what} {path!r} cannot be read ({error.strerror or error})") from None
    lines = [line for line in lines if line and not line.startswith("#")]
    rows, columns = [], None
    for number, line in enumerate(lines):
        fields = [field.strip() for field in line.split(",")]
        try:
            rows.append([float(field) for field in fields])
        except ValueError:
            if number == 0:  # a header line
                names = [field.strip("\"'") for field in fields]
                columns = (names[0], names[1]) if len(names) == 2 and all(names) else None
                continue
            raise DataError(f"{what} {path!r} line {number + 1} is not numeric: {line[:60]!r}") from None
    if not rows:
        return np.empty((0, 2)), columns
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise DataError(f"{what} {path!r} has rows of different lengths {sorted(widths)}; expected 2")
    return np.array(rows), columns


def estimate_std(points: np.ndarray, centers: np.ndarray) -> float:
    """Per-axis standard deviation of points around their nearest centre (isotropic Gaussian fit)."""
    distances = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=2).min(axis=1)
    return float(np.sqrt(np.mean(distances**2) / 2.0))


def split_heldout(points: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Splits points into (training, held-out): a random `fraction` of the rows, fixed by `seed`.

    At least one point stays for training; nothing is held out when fraction is 0 or the file
    has a single point.

    Returns:
        (training points, held-out points or None).
    """
    held = int(round(fraction * len(points)))
    held = min(held, len(points) - 1)
    if held <= 0:
        return points, None
    order = np.random.default_rng(seed).permutation(len(points))
    return points[np.sort(order[held:])], points[np.sort(order[:held])]


def from_file(
    data_path: str,
    centers_path: str | None = None,
    std: float | None = None,
    holdout_fraction: float = 0.0,
    seed: int = 0,
) -> Target:
    """A target made of a user's own points, with optional centres to measure coverage against.

    Args:
        data_path: .csv or .npy file of N×2 points.
        centers_path: optional .csv or .npy file of K×2 mode centres.
        std: per-axis mode std for the 3·std rule; estimated from the training points when None.
        holdout_fraction: share of the points held out of training to measure fidelity on.
        seed: seed of the held-out split.

    Returns:
        A Target that samples the file's training points with replacement.
    """
    points, columns = load_points_and_columns(data_path, "data file")
    points, heldout = split_heldout(points, holdout_fraction, seed)
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
    return Target(name=name, centers=centers, std=std, points=points, heldout=heldout, columns=columns)
