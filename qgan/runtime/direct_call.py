"""A tf.function called straight through its traced graphs, without its per-call argument binding."""

from __future__ import annotations

import tensorflow as tf


class DirectCall:
    """Calls a tf.function through the concrete function of its arguments' shapes and dtypes.

    On every call a tf.function binds its arguments to its signature and looks up the graph
    traced for them, which costs about 0.1 ms on a 2-core CPU: 5% of the compiled generator's
    forward+backward at cutoff 8. A training step called thousands of times with the same shapes
    pays it for nothing. Here each new combination of shapes and dtypes is traced once, by the
    tf.function itself (so the two share their graphs), and later calls run its concrete function.

    Args:
        function: a tf.function whose arguments are all tensors.
    """

    def __init__(self, function):
        self.function = function
        self._concrete = {}

    def __call__(self, *tensors):
        """The function's result for these tensors, structured as the tf.function returns it."""
        for position, tensor in enumerate(tensors):
            if not isinstance(tensor, tf.Tensor):
                raise TypeError(f"argument {position} is a {type(tensor).__name__}; allowed: a tf.Tensor")
        key = tuple((tuple(tensor.shape), tensor.dtype) for tensor in tensors)
        concrete = self._concrete.get(key)
        if concrete is None:
            concrete = self._concrete[key] = self.function.get_concrete_function(*tensors)
        return concrete(*tensors)
