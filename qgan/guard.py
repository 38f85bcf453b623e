"""GradientGuard: applies only finite, clipped gradients and counts every event, for any Keras model."""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)


def _variable_name(variable) -> str:
    return getattr(variable, "path", None) or variable.name


def _slot_variables(optimizer, variables) -> list[list]:
    """The optimizer's per-variable state (moments, …) of each variable, matched by name.

    Keras 3 names a slot `{variable.path with / as _}_{slot}`; a slot belongs to the variable
    with the longest such prefix and the same shape.
    """
    prefixes = [_variable_name(variable).replace("/", "_") + "_" for variable in variables]
    slots = [[] for _ in variables]
    for slot in optimizer.variables:
        matches = [
            index
            for index, prefix in enumerate(prefixes)
            if slot.name.startswith(prefix) and tuple(slot.shape) == tuple(variables[index].shape)
        ]
        if matches:
            best = max(matches, key=lambda index: len(prefixes[index]))
            slots[best].append(slot)
    return slots


class GradientGuard:
    """A guarded `optimizer.apply` for gradients from a `tf.GradientTape`.

    Per step: a non-finite loss updates nothing; None gradients are dropped; a variable whose
    gradient holds NaN/Inf is left untouched, its optimizer state included; the other gradients
    are clipped element-wise to ±clip_value and applied. If nothing remains, the optimizer is not
    called at all (its iteration count stays). Every event is counted in tf.Variables, so the
    guard works eagerly and under tf.function, and logged once per variable with its name.

    Args:
        clip_value: element-wise gradient bound; None turns clipping off.
        name: name used in log messages and metric names.
    """

    def __init__(self, clip_value: float | None = 1.0, name: str = "guard"):
        if clip_value is not None and not clip_value > 0:
            raise ValueError(f"clip_value must be positive or None, got {clip_value!r}")
        self.clip_value = clip_value
        self.name = name
        self.built = False
        self._logged = set()

    def build(self, optimizer, variables) -> None:
        """Builds the optimizer on all `variables` and creates the counters (call eagerly, once).

        Args:
            optimizer: a Keras 3 optimizer.
            variables: every variable this guard will ever be asked to update.
        """
        variables = list(variables)
        if not optimizer.built:
            optimizer.build(variables)
        self.variable_names = [_variable_name(variable) for variable in variables]
        self._variable_index = {id(variable): index for index, variable in enumerate(variables)}
        self._slots = _slot_variables(optimizer, variables)

        def counter(name, shape=()):
            return tf.Variable(tf.zeros(shape, tf.int64), trainable=False, name=f"{self.name}_{name}")

        self._steps = counter("steps")
        self._skipped_steps = counter("skipped_steps")
        self._nonfinite_loss_steps = counter("nonfinite_loss_steps")
        self._nonfinite_counts = counter("nonfinite_counts", (len(variables),))
        self._none_counts = counter("none_counts", (len(variables),))
        self.built = True

    @property
    def steps(self) -> int:
        """Steps seen."""
        return int(self._steps.numpy())

    @property
    def skipped_steps(self) -> int:
        """Steps in which no variable was updated."""
        return int(self._skipped_steps.numpy())

    @property
    def nonfinite_loss_steps(self) -> int:
        """Steps whose loss was NaN or Inf."""
        return int(self._nonfinite_loss_steps.numpy())

    def totals(self) -> dict:
        """Cumulative counters as tensors (usable inside tf.function), for logs and metrics.

        Returns:
            skipped_steps, nonfinite_loss_steps, nonfinite_grads and none_grads (summed over
            variables) as int64 scalar tensors.
        """
        return {
            "skipped_steps": tf.convert_to_tensor(self._skipped_steps),
            "nonfinite_loss_steps": tf.convert_to_tensor(self._nonfinite_loss_steps),
            "nonfinite_grads": tf.reduce_sum(self._nonfinite_counts),
            "none_grads": tf.reduce_sum(self._none_counts),
        }

    def counts(self) -> dict[str, dict[str, int]]:
        """Per variable name: how often its gradient was non-finite and how often None."""
        nonfinite = self._nonfinite_counts.numpy()
        none = self._none_counts.numpy()
        return {
            name: {"nonfinite": int(nonfinite[index]), "none": int(none[index])}
            for index, name in enumerate(self.variable_names)
        }

    def apply_gradients(self, optimizer, grads, variables, loss=None) -> dict:
        """Applies the usable gradients and returns what happened in this step.

        Args:
            optimizer: the Keras optimizer the guard was built with.
            grads: gradients from tape.gradient; entries may be None.
            variables: the variables, in the order of grads.
            loss: the step's loss; when given and non-finite, nothing is updated.

        Returns:
            A dict of scalar tensors: applied (bool: some variable was updated), loss_finite,
            nonfinite_grads and none_grads (numbers of variables), global_norm (of the finite
            gradients, before clipping).
        """
        variables = list(variables)
        grads = list(grads)
        if len(grads) != len(variables):
            raise ValueError(f"{len(grads)} gradients for {len(variables)} variables")
        if not self.built:
            self.build(optimizer, variables)
        indices = []
        for variable in variables:
            if id(variable) not in self._variable_index:
                raise ValueError(f"variable {_variable_name(variable)!r} was not given to {self.name}.build")
            indices.append(self._variable_index[id(variable)])

        present = [
            (grad, variable, index)
            for grad, variable, index in zip(grads, variables, indices)
            if grad is not None
        ]
        none_mask = [0] * len(self.variable_names)
        for grad, index in zip(grads, indices):
            if grad is None:
                none_mask[index] = 1
        loss_finite = tf.constant(True) if loss is None else tf.reduce_all(tf.math.is_finite(loss))

        finite_flags = [tf.reduce_all(tf.math.is_finite(grad)) for grad, _, _ in present]
        keep_flags = [tf.logical_and(flag, loss_finite) for flag in finite_flags]
        safe_grads = [
            tf.where(flag, grad, tf.zeros_like(grad)) for (grad, _, _), flag in zip(present, finite_flags)
        ]
        global_norm = tf.linalg.global_norm(safe_grads) if safe_grads else tf.constant(0.0)
        if self.clip_value is not None:
            safe_grads = [tf.clip_by_value(grad, -self.clip_value, self.clip_value) for grad in safe_grads]

        if present:
            keep = tf.stack(keep_flags)
            any_kept = tf.reduce_any(keep)
            all_kept = tf.reduce_all(keep)
            present_variables = [variable for _, variable, _ in present]
            present_slots = [self._slots[index] for _, _, index in present]

            def apply_all():
                optimizer.apply(safe_grads, present_variables)
                return tf.constant(True)

            def apply_some():
                saved = [
                    [tf.identity(v) for v in [variable, *slots]]
                    for variable, slots in zip(present_variables, present_slots)
                ]
                optimizer.apply(safe_grads, present_variables)
                for flag, old_values, variable, slots in zip(
                    keep_flags, saved, present_variables, present_slots
                ):
                    for old, current in zip(old_values, [variable, *slots]):
                        current.assign(tf.where(flag, current, old))
                return tf.constant(True)

            applied = tf.cond(
                all_kept,
                apply_all,
                lambda: tf.cond(any_kept, apply_some, lambda: tf.constant(False)),
            )
        else:
            applied = tf.constant(False)

        nonfinite = tf.zeros(len(self.variable_names), tf.int64)
        if present:
            bad = tf.cast(tf.logical_not(tf.stack(finite_flags)), tf.int64)
            nonfinite = tf.scatter_nd([[index] for _, _, index in present], bad, [len(self.variable_names)])
        self._nonfinite_counts.assign_add(nonfinite)
        self._none_counts.assign_add(tf.constant(none_mask, tf.int64))
        self._steps.assign_add(1)
        self._skipped_steps.assign_add(tf.cast(tf.logical_not(applied), tf.int64))
        self._nonfinite_loss_steps.assign_add(tf.cast(tf.logical_not(loss_finite), tf.int64))
        if tf.executing_eagerly():
            self.log_events()
        return {
            "applied": applied,
            "loss_finite": loss_finite,
            "nonfinite_grads": tf.reduce_sum(nonfinite),
            "none_grads": tf.constant(sum(none_mask), tf.int64),
            "global_norm": global_norm,
        }

    def log_events(self) -> None:
        """Logs each kind of event once per variable (and a non-finite loss once), by name."""
        if not self.built:
            return
        if self.nonfinite_loss_steps and "loss" not in self._logged:
            self._logged.add("loss")
            logger.warning("%s: non-finite loss; such steps update nothing", self.name)
        for name, counts in self.counts().items():
            for kind, count in counts.items():
                if count and (kind, name) not in self._logged:
                    self._logged.add((kind, name))
                    what = "was None" if kind == "none" else "held NaN/Inf"
                    logger.warning(
                        "%s: gradient of %r %s; that variable is left untouched in such steps",
                        self.name,
                        name,
                        what,
                    )


class GuardLogger(keras.callbacks.Callback):
    """Logs the guards' new events after each batch of `fit` (needed when steps run as graphs)."""

    def __init__(self, guards):
        super().__init__()
        self.guards = list(guards)

    def on_train_batch_end(self, batch, logs=None):
        for guard in self.guards:
            guard.log_events()
