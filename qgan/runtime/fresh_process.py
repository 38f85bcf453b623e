"""Runs a function in a fresh Python process, whose imports, compilations and peak memory are its own."""

from __future__ import annotations

import multiprocessing
import os


def _call_quietly(function, arguments: tuple):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return function(*arguments)


def in_fresh_process(function, *arguments):
    """function(*arguments) in a freshly spawned process, which ends when the call returns.

    The process starts from a new interpreter (not a fork), so nothing this process has imported
    or compiled is shared with it, and its peak resident memory is that of the call alone.
    TensorFlow's C++ logging is kept to warnings there unless TF_CPP_MIN_LOG_LEVEL is set.

    Args:
        function: a module-level function (the new process imports it by name).
        *arguments: its arguments; they and the result must pickle.

    Returns:
        What the function returns. An exception it raises is raised here.
    """
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_call_quietly, (function, arguments))
