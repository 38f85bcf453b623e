"""Atomic writes when two writers save one path at the same time."""

import os

from qgan.runtime.files import save_atomic, write_atomic


def test_two_writers_of_one_path_never_rename_each_others_file(tmp_path):
    path = tmp_path / "history.png"

    def slow_writer(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write("first")
        write_atomic(str(path), "second")  # another worker saves the same report meanwhile

    save_atomic(str(path), slow_writer)
    assert path.read_text() == "first"  # the later rename wins, and neither writer failed
    assert os.listdir(tmp_path) == ["history.png"]
