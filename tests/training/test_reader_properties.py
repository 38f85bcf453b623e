"""Property tests of the run-folder readers: damaged bytes give a one-line RunFolderError, nothing else."""

import json
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from qgan.training.readers import RunFolderError, check_hdf5, read_json_object

PROPERTIES = settings(max_examples=60, derandomize=True, deadline=None)


def written(content: bytes) -> str:
    handle, path = tempfile.mkstemp()
    with os.fdopen(handle, "wb") as file:
        file.write(content)
    return path


@PROPERTIES
@given(content=st.one_of(st.binary(max_size=200), st.text(max_size=60).map(str.encode)))
def test_any_bytes_are_a_json_object_or_a_one_line_refusal(content):
    path = written(content)
    try:
        value = read_json_object(path, "generator.json")
        assert isinstance(value, dict) and value == json.loads(content.decode("utf-8"))
    except RunFolderError as error:
        assert "\n" not in str(error) and path in str(error)
    finally:
        os.unlink(path)


@PROPERTIES
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda tail: b"\x89HDF\r\n\x1a\n" + tail),  # a truncated file
    )
)
def test_damaged_weights_files_are_refused_in_one_line(content):
    path = written(content)
    try:
        check_hdf5(path, "generator weights")
        raise AssertionError("random bytes were taken for an HDF5 file")
    except RunFolderError as error:
        assert "\n" not in str(error) and path in str(error)
    finally:
        os.unlink(path)
