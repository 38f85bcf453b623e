"""Atomic file writes: each file is written under a temporary name and renamed into place."""

from __future__ import annotations

import os
import uuid


def save_atomic(path: str, save) -> None:
    """Calls save(temporary_path), then renames the temporary file to path.

    The temporary name keeps path's file name at its end (".tmp-<unique>-" is put before it),
    since some writers choose the format from the suffix; it is unique to this call, so writers
    of one path in other processes or on other machines (two qgan-tune workers writing a study's
    report) never rename each other's files. A failed save leaves no temporary file.
    """
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{name}")
    try:
        save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_atomic(path: str, text: str) -> None:
    """Writes text to path so that no reader ever sees half a file."""

    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    save_atomic(path, write)
