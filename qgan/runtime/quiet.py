"""TensorFlow imported without the start-up lines its C++ core writes to stderr on a machine without a GPU."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Points file descriptor 2 at /dev/null inside the block (what C++ code writes there is dropped).

    Python's own sys.stderr is flushed first and restored after, so a Python exception raised in
    the block is still printed in full once the block has ended.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Imports TensorFlow and lets it probe for devices with its start-up messages dropped; returns tf.

    Without a GPU, TensorFlow's C++ core prints lines about missing CUDA drivers (before its log
    settings apply, so TF_CPP_MIN_LOG_LEVEL cannot hide them); a command's output then starts with
    its own lines. Set QGAN_TENSORFLOW_LOGS=1 to see them.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("QGAN_TENSORFLOW_LOGS") == "1" or "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
