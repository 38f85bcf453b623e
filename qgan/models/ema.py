"""WeightAverage: an exponential moving average of a layer's weights, for evaluating and saving it."""

from __future__ import annotations

import contextlib

import tensorflow as tf


class WeightAverage:
    """An exponential moving average of variables, updated inside a compiled step.

    average ← d·average + (1 − d)·value with d = min(decay, (1 + t)/(10 + t)) at the t-th update,
    the warm-up of tf.train.ExponentialMovingAverage's num_updates, so that the first updates are
    not tied to the initial weights (Keras' optimizer `use_ema` has a constant momentum, which
    after 3,000 steps at 0.999 still holds 5% of the initial weights). The averages and the count
    are tf.Variables: a checkpoint of `state_variables()` carries them.

    Args:
        variables: the variables to average (the generator's trainable weights).
        decay: the largest decay d, in [0, 1).
        name: prefix of the averages' names.
    """

    def __init__(self, variables, decay: float, name: str = "weight_average"):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay={decay!r} is not allowed; use a number in [0, 1)")
        self.variables = list(variables)
        self.decay = decay
        self.averages = [
            tf.Variable(tf.convert_to_tensor(variable), trainable=False, name=f"{name}_{index}")
            for index, variable in enumerate(self.variables)
        ]
        self.updates = tf.Variable(tf.constant(0, tf.int64), trainable=False, name=f"{name}_updates")

    def current_decay(self) -> tf.Tensor:
        """The decay the next update uses."""
        count = tf.cast(self.updates, tf.float32)
        return tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + count) / (10.0 + count))

    def update(self) -> None:
        """Moves each average towards its variable's current value (graph- and XLA-safe)."""
        decay = self.current_decay()
        for average, variable in zip(self.averages, self.variables):
            value = tf.convert_to_tensor(variable)
            average.assign(tf.cast(decay, value.dtype) * average + tf.cast(1.0 - decay, value.dtype) * value)
        self.updates.assign_add(1)

    def state_variables(self) -> dict:
        """The averages and the update count by name, for tf.train.Checkpoint."""
        return {
            "updates": self.updates,
            **{f"average_{index}": average for index, average in enumerate(self.averages)},
        }

    @contextlib.contextmanager
    def applied(self):
        """Within the block the variables hold their averages; afterwards their own values again (eager)."""
        saved = [tf.identity(variable) for variable in self.variables]
        for variable, average in zip(self.variables, self.averages):
            variable.assign(average)
        try:
            yield
        finally:
            for variable, value in zip(self.variables, saved):
                variable.assign(value)
