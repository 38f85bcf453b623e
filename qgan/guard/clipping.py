"""Gradient clipping by value, per-variable norm and global norm, idempotent up to a 1e-6 slack."""

from __future__ import annotations

import tensorflow as tf

#: A norm within this relative slack of its bound is left alone, so clipping twice changes nothing.
SLACK = 1e-6


def _scale_to(norm: tf.Tensor, bound: float) -> tf.Tensor:
    """bound / norm where norm exceeds bound (beyond the slack), else 1."""
    over = norm > bound * (1.0 + SLACK)
    return tf.where(over, bound / tf.where(over, norm, 1.0), 1.0)


def clip_gradients(
    grads: list,
    clip_value: float | None = None,
    clip_norm: float | None = None,
    global_clip_norm: float | None = None,
) -> list:
    """Clips finite gradients element-wise, then per tensor by L2 norm, then jointly by global L2 norm.

    Args:
        grads: finite gradient tensors.
        clip_value: element bound (±clip_value); None = off.
        clip_norm: bound on each tensor's L2 norm; None = off.
        global_clip_norm: bound on the L2 norm of all tensors together; None = off.

    Returns:
        The clipped tensors, same dtypes. Norms are computed in float32.
    """
    grads = list(grads)
    if clip_value is not None:
        grads = [tf.clip_by_value(grad, -clip_value, clip_value) for grad in grads]
    if clip_norm is not None:
        grads = [
            grad * tf.cast(_scale_to(tf.norm(tf.cast(grad, tf.float32)), clip_norm), grad.dtype)
            for grad in grads
        ]
    if global_clip_norm is not None and grads:
        total = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(tf.cast(grad, tf.float32))) for grad in grads]))
        scale = _scale_to(total, global_clip_norm)
        grads = [grad * tf.cast(scale, grad.dtype) for grad in grads]
    return grads
