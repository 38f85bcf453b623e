"""Property tests of the file readers: whatever bytes a file holds, a reader returns points or a DataError."""

import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qgan.evaluation.targets import DataError, load_points_and_columns, split_heldout

# fixed examples, bounded in number: the suite stays fast and every run tries the same files
PROPERTIES = settings(
    max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def written(content: bytes, extension: str) -> str:
    handle, path = tempfile.mkstemp(suffix=extension)
    with os.fdopen(handle, "wb") as file:
        file.write(content)
    return path


def read_or_refuse(path):
    """The reader's result, or the DataError's message; any other exception fails the test."""
    try:
        return load_points_and_columns(path)
    except DataError as error:
        message = str(error)
        assert "\n" not in message and path in message
        return message
    finally:
        os.unlink(path)


@PROPERTIES
@given(content=st.binary(max_size=300), extension=st.sampled_from([".csv", ".npy"]))
def test_any_bytes_give_finite_points_or_a_one_line_data_error(content, extension):
    result = read_or_refuse(written(content, extension))
    if not isinstance(result, str):
        points, _ = result
        assert points.ndim == 2 and points.shape[1] == 2 and len(points) >= 1
        assert np.all(np.isfinite(points))


TEXT_LINES = st.lists(
    st.one_of(
        st.text(alphabet="0123456789.,-+eE naif#\"'µx()", max_size=30),
        st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.floats()).map(
            lambda pair: f"{pair[0]!r},{pair[1]!r}"
        ),
    ),
    max_size=8,
)


@PROPERTIES
@given(lines=TEXT_LINES, encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]))
def test_any_text_lines_give_finite_points_or_a_one_line_data_error(lines, encoding):
    result = read_or_refuse(written("\n".join(lines).encode(encoding, errors="replace"), ".csv"))
    if not isinstance(result, str):
        assert np.all(np.isfinite(result[0])) and result[0].shape[1] == 2


FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=64)


@PROPERTIES
@given(
    points=arrays(np.float64, st.tuples(st.integers(1, 20), st.just(2)), elements=FINITE),
    header=st.sampled_from([None, ("x (µm)", "y (µm)"), ("a", "b")]),
)
def test_points_written_as_csv_or_npy_read_back_exactly(points, header):
    text = "".join(f"{float(x)!r},{float(y)!r}\n" for x, y in points)
    if header is not None:
        text = ",".join(header) + "\n" + text
    read, columns = read_or_refuse(written(text.encode("utf-8"), ".csv"))
    np.testing.assert_array_equal(read, points)
    assert columns == header
    path = written(b"", ".npy")
    np.save(path, points)
    read, columns = read_or_refuse(path)
    np.testing.assert_array_equal(read, points)
    assert columns is None


@PROPERTIES
@given(
    count=st.integers(1, 200),
    fraction=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**31 - 1),
)
def test_the_heldout_split_is_a_disjoint_partition_fixed_by_the_seed(count, fraction, seed):
    points = np.arange(2 * count, dtype=np.float64).reshape(count, 2)
    training, heldout = split_heldout(points, fraction, seed)
    again = split_heldout(points, fraction, seed)
    np.testing.assert_array_equal(training, again[0])
    held = np.empty((0, 2)) if heldout is None else heldout
    assert len(training) >= 1 and len(training) + len(held) == count
    assert not set(training[:, 0]) & set(held[:, 0])
    assert sorted(training[:, 0].tolist() + held[:, 0].tolist()) == points[:, 0].tolist()
    if count > 1:
        assert len(held) == min(int(round(fraction * count)), count - 1)


@pytest.mark.parametrize("extension", [".csv", ".npy"])
def test_a_folder_named_like_a_data_file_is_refused_as_a_folder(tmp_path, extension):
    folder = tmp_path / f"points{extension}"
    folder.mkdir()
    with pytest.raises(DataError, match="folder"):
        load_points_and_columns(str(folder))
