"""Readers every entry point shares: run folders, saved generators, output paths, refused alike.

Each check runs before TensorFlow is imported where it can (JSON, HDF5 signatures, paths), so
that a refusal is quick, and raises an InputError subclass whose message names the file.
"""

from __future__ import annotations

import json
import os
import uuid

from qgan.runtime.errors import InputError, first_line

CONFIG_FILE = "generator.json"
WEIGHTS_FILE = "generator.weights.h5"
OLD_WEIGHTS_FILE = "generator.weights.npz"  # run folders written before the Keras format
RUN_CONFIG_FILE = "config.json"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: the registered names a generator.json may hold (qgan.training.saved_generator registers them)
QUANTUM_GENERATOR_NAME = "qgan>QuantumGenerator"
GENERATOR_NAMES = (QUANTUM_GENERATOR_NAME, "qgan>ClassicalGenerator", "qgan>ClassicalMixtureGenerator")


class RunFolderError(InputError):
    """A run folder, or a file in it, that cannot be used."""


def check_run_folder(run_dir: str, what: str = "run") -> None:
    """Raises RunFolderError unless run_dir is an existing folder."""
    if not os.path.exists(run_dir):
        raise RunFolderError(f"{what} {run_dir!r} does not exist; give a run folder written by qgan-train")
    if not os.path.isdir(run_dir):
        raise RunFolderError(f"{what} {run_dir!r} is a file, not a run folder")


def read_json_object(path: str, what: str) -> dict:
    """The JSON object in a file; RunFolderError when it is missing, unreadable, not JSON or not an object."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        raise RunFolderError(f"{what} {path!r} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RunFolderError(f"{what} {path!r} is not readable JSON ({first_line(error)})") from None
    if not isinstance(value, dict):
        raise RunFolderError(f"{what} {path!r} does not hold a JSON object")
    return value


def read_run_config(run_dir: str) -> dict:
    """A run folder's config.json as a dict (RunFolderError when it is missing or damaged)."""
    return read_json_object(os.path.join(run_dir, RUN_CONFIG_FILE), "run settings")


def check_hdf5(path: str, what: str) -> None:
    """Raises RunFolderError unless path is an HDF5 file that h5py opens (a truncated one does not)."""
    try:
        with open(path, "rb") as handle:
            signature = handle.read(len(HDF5_SIGNATURE))
    except FileNotFoundError:
        raise RunFolderError(f"{what} {path!r} is missing") from None
    except OSError as error:
        raise RunFolderError(f"{what} {path!r} cannot be read ({error.strerror or error})") from None
    if signature != HDF5_SIGNATURE:
        raise RunFolderError(f"{what} {path!r} is not an HDF5 weights file (it was overwritten or damaged)")
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            handle.visit(lambda name: None)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise RunFolderError(f"{what} {path!r} is damaged ({first_line(error)})") from None


def saved_generator_config(run_dir: str) -> dict | None:
    """The checked generator.json of a run folder, or None for a folder from before the Keras format.

    Raises:
        RunFolderError: no folder, no generator, a generator.json that is not a qgan generator's,
            or weights that are missing or damaged.
    """
    check_run_folder(run_dir)
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(config_path):
        if os.path.isfile(os.path.join(run_dir, OLD_WEIGHTS_FILE)):
            read_run_config(run_dir)
            return None
        raise RunFolderError(
            f"{run_dir!r} holds no trained generator ({CONFIG_FILE} and {WEIGHTS_FILE}, written when a run "
            "ends); give the folder of a finished or stopped run"
        )
    config = read_json_object(config_path, "generator")
    if config.get("registered_name") not in GENERATOR_NAMES or not isinstance(config.get("config"), dict):
        raise RunFolderError(f"generator {config_path!r} does not describe a qgan generator")
    check_hdf5(os.path.join(run_dir, WEIGHTS_FILE), "generator weights")
    return config


def check_output_file(path: str, flag: str, formats: tuple[str, ...], overwrite: bool) -> None:
    """Raises InputError unless `path` can be written as one of `formats` (probing its folder with a file).

    Nothing the user has is changed: an existing file is refused without overwrite, and the probe
    is a uniquely named file removed at once.
    """
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in formats:
        raise InputError(
            f"{flag} {path!r}: unknown format {suffix or '(none)'}; allowed: {', '.join(formats)}"
        )
    if os.path.isdir(path):
        raise InputError(f"{flag} {path!r} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{flag} {path!r}: folder {folder!r} does not exist")
    if os.path.exists(path) and not overwrite:
        raise InputError(f"{flag} {path!r} exists already; choose another file or pass --overwrite")
    probe = os.path.join(folder, f".qgan-write-test-{uuid.uuid4().hex}")
    try:
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write("ok")
    except OSError as error:
        raise InputError(f"{flag} {path!r} cannot be written ({error.strerror or error})") from None
    finally:
        if os.path.exists(probe):
            os.remove(probe)
