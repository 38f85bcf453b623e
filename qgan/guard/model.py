"""GuardedModel: a keras.Model whose `fit` steps go through a GradientGuard."""

from __future__ import annotations

import keras
import tensorflow as tf

from qgan.guard.gradient_guard import GradientGuard


class GuardedModel(keras.Model):
    """Any Keras model (functional or subclassed) trained by `fit` with a guarded optimizer step.

    Build it like keras.Model, e.g. GuardedModel(inputs, outputs, guard=GradientGuard(...)), and
    compile it as usual. Each train step computes the compiled loss, then hands the gradients
    to the guard instead of the optimizer. The logged "loss" averages the finite losses only;
    the guard's counters are logged as `{guard.name}_{counter}`. Pass GuardMonitor to `fit`
    for event logging and recovery="stop".

    Args:
        guard: the GradientGuard (default: GradientGuard()).
    """

    def __init__(self, *args, guard: GradientGuard | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.guard = guard if guard is not None else GradientGuard()
        self.finite_loss = keras.metrics.Mean(name="loss")

    def fit(self, *args, **kwargs):
        """keras.Model.fit, after building the optimizer and the guard on all trainable variables."""
        if not self.built:
            raise ValueError("build the model (call it on data or give it an input shape) before fit")
        if not self.guard.built:
            self.guard.build(self.optimizer, self.trainable_variables)
        return super().fit(*args, **kwargs)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        self.guard.apply_gradients(self.optimizer, grads, variables, loss=loss)
        finite = tf.math.is_finite(loss)
        self.finite_loss.update_state(tf.where(finite, loss, 0.0), sample_weight=tf.cast(finite, loss.dtype))
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        logs["loss"] = self.finite_loss.result()
        for name, value in self.guard.totals().items():
            logs[f"{self.guard.name}_{name}"] = value
        return logs

    @property
    def metrics(self):
        return [*super().metrics, self.finite_loss]
