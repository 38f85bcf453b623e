"""XLA's persistent compilation cache: compiled steps kept on disk, so a repeated run skips most compiling."""

from __future__ import annotations

import importlib.metadata
import os

from qgan.runtime.xla_flags import add_flag, flag_value

FLAG = "--tf_xla_persistent_cache_directory"


def default_directory() -> str:
    """$XDG_CACHE_HOME/qgan/xla/tf-<version> (~/.cache/... by default): one folder per TensorFlow version."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "qgan", "xla", f"tf-{importlib.metadata.version('tensorflow')}")


def enable(directory: str | None = None) -> str:
    """Points TensorFlow's XLA persistent cache at `directory` (default_directory() when None).

    TensorFlow reads TF_XLA_FLAGS once, at the process's first XLA compilation, so this takes
    effect only when called before it. A cache directory already in TF_XLA_FLAGS is kept.

    Returns:
        The cache directory in use.
    """
    given = flag_value("TF_XLA_FLAGS", FLAG)
    if given is not None:
        return given
    directory = directory or default_directory()
    os.makedirs(directory, exist_ok=True)
    add_flag("TF_XLA_FLAGS", FLAG, directory)
    return directory
