"""Where a Keras 3 optimizer keeps each variable's state, and one flat copy of it for rollback."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def variable_name(variable) -> str:
    """The variable's path (Keras 3) or name."""
    return getattr(variable, "path", None) or variable.name


def slot_variables(optimizer, variables) -> tuple[list[list], list]:
    """The optimizer's per-variable state (moments, accumulators, …) of each variable.

    Keras 3 optimizers create per-variable state with `add_variable_from_reference`, which names
    it `{variable path with / as _}_{slot}`; a slot belongs to the variable with the longest
    such prefix and the same shape.

    Returns:
        (slots per variable, optimizer variables that belong to no variable, e.g. iterations).
    """
    prefixes = [variable_name(variable).replace("/", "_") + "_" for variable in variables]
    slots = [[] for _ in variables]
    shared = []
    for slot in optimizer.variables:
        matches = [
            index
            for index, prefix in enumerate(prefixes)
            if slot.name.startswith(prefix) and tuple(slot.shape) == tuple(variables[index].shape)
        ]
        if matches:
            slots[max(matches, key=lambda index: len(prefixes[index]))].append(slot)
        else:
            shared.append(slot)
    return slots, shared


def learning_rate_variable(optimizer):
    """The optimizer's learning-rate variable (unwrapping a LossScaleOptimizer), or None for a schedule."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    rate = getattr(optimizer, "_learning_rate", None)
    return rate if isinstance(rate, keras.Variable) else None


def dtype_name(item) -> str:
    """The dtype name of a tf.Variable or Keras variable."""
    return tf.as_dtype(item.dtype).name


def flatten(items) -> tf.Tensor:
    """The items' values, flattened and concatenated into one vector."""
    return tf.concat([tf.reshape(item, [-1]) for item in items], axis=0)


class StateSnapshot:
    """A copy of variables and optimizer state, one flat tf.Variable per dtype (few inputs per step).

    Args:
        items: the variables and optimizer state to copy, in a fixed order.
        name: prefix of the copies' names.
    """

    def __init__(self, items, name: str):
        self.items = list(items)
        self.copies = {
            dtype: tf.Variable(flatten(self._of(dtype)), trainable=False, name=f"{name}_snapshot_{dtype}")
            for dtype in sorted({dtype_name(item) for item in self.items})
        }

    def _of(self, dtype: str) -> list:
        return [item for item in self.items if dtype_name(item) == dtype]

    def save(self):
        """Copies the current values; returns True (a tensor, for control dependencies)."""
        for dtype, copy in self.copies.items():
            copy.assign(flatten(self._of(dtype)))
        return tf.constant(True)

    def restore(self) -> None:
        """Puts the copied values back."""
        for dtype, copy in self.copies.items():
            items = self._of(dtype)
            pieces = tf.split(copy, [int(np.prod(item.shape)) for item in items])
            for item, piece in zip(items, pieces):
                item.assign(tf.reshape(piece, item.shape))
