"""Tests of qgan.evaluation.targets: the standard mixtures and users' coordinate files."""

import numpy as np
import pytest

from qgan.evaluation import targets


def test_ring_has_eight_centres_on_radius_two():
    ring = targets.ring()
    assert ring.centers.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(ring.centers, axis=1), 2.0)
    np.testing.assert_allclose(ring.centers[0], [2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(ring.centers[2], [0.0, 2.0], atol=1e-12)
    assert ring.std == 0.02


def test_grid_has_25_centres_on_the_standard_lattice():
    grid = targets.grid()
    assert grid.std == 0.05
    expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(np.round(center).astype(int)) for center in grid.centers} == expected
    np.testing.assert_allclose(grid.centers, np.round(grid.centers), atol=1e-12)


def test_sample_is_seeded_and_has_the_mode_std():
    ring = targets.ring()
    first = ring.sample(20000, seed=3)
    np.testing.assert_array_equal(first, ring.sample(20000, seed=3))
    assert first.dtype == np.float32
    offsets = first[:, None, :] - ring.centers[None]
    nearest = np.argmin(np.linalg.norm(offsets, axis=2), axis=1)
    residual = first - ring.centers[nearest]
    np.testing.assert_allclose(residual.std(axis=0), 0.02, rtol=0.03)
    counts = np.bincount(nearest, minlength=8)
    assert counts.min() > 20000 / 8 * 0.9


def test_from_file_reads_csv_with_header_and_npy(tmp_path):
    points = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    csv_path = tmp_path / "points.csv"
    csv_path.write_text("x,y\n0,1\n2,3\n4,5\n")
    npy_path = tmp_path / "points.npy"
    np.save(npy_path, points)
    np.testing.assert_array_equal(targets.load_points(str(csv_path)), points)
    np.testing.assert_array_equal(targets.load_points(str(npy_path)), points)
    target = targets.from_file(str(csv_path))
    assert target.centers is None and target.name == "points"
    drawn = target.sample(100, seed=0)
    assert {tuple(row) for row in drawn} <= {tuple(row) for row in points.astype(np.float32)}


def test_from_file_estimates_the_std_around_the_centres(tmp_path):
    centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    offsets = np.array([[0.3, 0.0], [-0.3, 0.0], [0.0, 0.3], [0.0, -0.3]])
    points = np.concatenate([centers[0] + offsets, centers[1] + offsets])
    np.save(tmp_path / "data.npy", points)
    np.save(tmp_path / "centres.npy", centers)
    target = targets.from_file(str(tmp_path / "data.npy"), str(tmp_path / "centres.npy"))
    assert target.std == pytest.approx(0.3 / np.sqrt(2.0))
    given = targets.from_file(str(tmp_path / "data.npy"), str(tmp_path / "centres.npy"), std=0.5)
    assert given.std == 0.5


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, "does not exist"),
        ("empty.csv", "", "is empty"),
        ("header_only.csv", "x,y\n", "is empty"),
        ("words.csv", "x,y\n1,2\na,b\n", "line 3 is not numeric"),
        ("three.csv", "1,2,3\n4,5,6\n", "expected (N, 2)"),
        ("one.csv", "1\n2\n", "expected (N, 2)"),
        ("ragged.csv", "1,2\n3\n", "rows of different lengths"),
        ("nan.csv", "1,2\nnan,3\n", "NaN or Inf, first at row 1"),
        ("inf.csv", "1,2\n3,inf\n", "NaN or Inf"),
        ("points.txt", "1,2\n", "allowed: .csv, .npy"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(targets.DataError) as error:
        targets.load_points(str(path))
    assert message in str(error.value)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_bad_npy_shape_is_reported(tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(targets.DataError, match=r"shape \(2, 2, 2\)"):
        targets.load_points(str(tmp_path / "cube.npy"))


def test_the_held_out_split_is_disjoint_from_training_and_fixed_by_the_seed(tmp_path):
    points = np.arange(200, dtype=float).reshape(100, 2)
    np.save(tmp_path / "points.npy", points)
    target = targets.from_file(str(tmp_path / "points.npy"), holdout_fraction=0.2, seed=3)
    assert len(target.points) == 80 and len(target.heldout) == 20
    rows = {tuple(row) for row in target.points}
    assert not rows & {tuple(row) for row in target.heldout}
    assert rows | {tuple(row) for row in target.heldout} == {tuple(row) for row in points}
    again = targets.from_file(str(tmp_path / "points.npy"), holdout_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again.heldout, target.heldout)
    other = targets.from_file(str(tmp_path / "points.npy"), holdout_fraction=0.2, seed=4)
    assert {tuple(row) for row in other.heldout} != {tuple(row) for row in target.heldout}
    # training draws come from the training points only
    assert {tuple(row) for row in target.sample(500, seed=0).astype(float)} <= rows


def test_nothing_is_held_out_at_zero_or_from_a_single_point(tmp_path):
    np.save(tmp_path / "one.npy", np.array([[1.0, 2.0]]))
    assert targets.from_file(str(tmp_path / "one.npy"), holdout_fraction=0.5).heldout is None
    np.save(tmp_path / "two.npy", np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert targets.from_file(str(tmp_path / "two.npy"), holdout_fraction=0.0).heldout is None
    assert len(targets.from_file(str(tmp_path / "two.npy"), holdout_fraction=0.9).points) == 1


def test_a_csv_header_names_the_columns(tmp_path):
    (tmp_path / "named.csv").write_text('"x (µm)",y (µm)\n0,1\n2,3\n', encoding="utf-8")
    target = targets.from_file(str(tmp_path / "named.csv"))
    assert target.columns == ("x (µm)", "y (µm)")
    (tmp_path / "plain.csv").write_text("0,1\n2,3\n")
    assert targets.from_file(str(tmp_path / "plain.csv")).columns is None
