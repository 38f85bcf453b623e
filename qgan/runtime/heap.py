"""The garbage collector kept off a command's imported modules: one collection, then a freeze."""

from __future__ import annotations

import gc


def freeze_imports() -> None:
    """Collects once, then moves every object alive into the collector's permanent generation.

    A command imports TensorFlow, Keras and Strawberry Fields before it works: millions of
    objects that live until the process ends. Frozen, they are no longer walked by the
    collections that tracing and training trigger, nor by the interpreter's last collection
    when the process exits. Objects made afterwards are collected as usual; a frozen object
    that later becomes part of an unreachable cycle is never freed, so this suits a command's own
    process, once its imports are done.
    """
    gc.collect()
    gc.freeze()
