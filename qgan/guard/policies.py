"""The non-finite gradient policies of GradientGuard: which variables a step updates, and how."""

from __future__ import annotations

import tensorflow as tf


def policy_applies(nonfinite: str, loss_finite, all_finite, finite):
    """Whether the policy updates some variable in this step."""
    if nonfinite in ("skip", "raise"):
        return tf.logical_and(loss_finite, all_finite)
    if nonfinite == "zero":
        return loss_finite
    return tf.logical_and(loss_finite, tf.reduce_any(finite))


def apply_with_policy(
    nonfinite: str, optimizer, grads, variables, slots, finite, loss_finite, all_finite, clip
):
    """Applies the clipped gradients as the policy says; returns whether anything was updated.

    Args:
        nonfinite: "filter", "zero", "skip" or "raise" (see GradientGuard).
        optimizer: a built Keras 3 optimizer.
        grads, variables: the present gradients and their variables.
        slots: each variable's optimizer state (slot_variables), restored where "filter" rejects.
        finite: (len(grads),) bool, each gradient finite; loss_finite, all_finite: bool scalars.
        clip: the clipping of a gradient list.
    """
    if not variables:
        return tf.constant(False)

    def zeroed():
        return [tf.where(finite[position], grad, tf.zeros_like(grad)) for position, grad in enumerate(grads)]

    def apply_all():
        optimizer.apply(clip(grads), variables)
        return tf.constant(True)

    def nothing():
        return tf.constant(False)

    if nonfinite in ("skip", "raise"):
        return tf.cond(tf.logical_and(loss_finite, all_finite), apply_all, nothing)

    def apply_zeroed():
        optimizer.apply(clip(zeroed()), variables)
        return tf.constant(True)

    if nonfinite == "zero":
        return tf.cond(loss_finite, lambda: tf.cond(all_finite, apply_all, apply_zeroed), nothing)

    def apply_finite_ones():
        saved = [[tf.identity(item) for item in [variable, *own]] for variable, own in zip(variables, slots)]
        with tf.control_dependencies([item for group in saved for item in group]):
            optimizer.apply(clip(zeroed()), variables)
        for position, (old_values, variable, own) in enumerate(zip(saved, variables, slots)):
            for old, current in zip(old_values, [variable, *own]):
                current.assign(tf.where(finite[position], current, old))
        return tf.constant(True)

    # with every gradient finite this is apply_all, value for value: one traced update serves both
    some_finite = tf.reduce_any(finite)
    return tf.cond(tf.logical_and(loss_finite, some_finite), apply_finite_ones, nothing)
