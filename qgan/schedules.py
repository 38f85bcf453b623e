"""Learning-rate decay over a run, applied per step on top of whatever the guard's back-off did."""

from __future__ import annotations

import math

import keras

from qgan.config import LR_SCHEDULES


def decay_factor(schedule: str, step: int, total_steps: int, final_fraction: float) -> float:
    """The factor of the initial learning rate after `step` of `total_steps` steps.

    Args:
        schedule: "constant" (always 1), "linear" or "cosine" (from 1 at step 0 to final_fraction at the end).
        step: completed steps, 0 ≤ step ≤ total_steps.
        total_steps: the run's step budget.
        final_fraction: the factor at step total_steps.

    Returns:
        The factor.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"schedule {schedule!r} is unknown; allowed: {', '.join(LR_SCHEDULES)}")
    if schedule == "constant":
        return 1.0
    progress = min(max(step / total_steps, 0.0), 1.0)
    if schedule == "linear":
        shape = 1.0 - progress
    else:
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    return final_fraction + (1.0 - final_fraction) * shape


class LearningRateDecay(keras.callbacks.Callback):
    """Multiplies each optimizer's learning rate by f(s)/f(s−1) before generator step s+1.

    Scaling the current rate, instead of setting it, keeps any change made meanwhile (a guard's
    rollback halving it) and continues correctly from a restored checkpoint.

    Args:
        optimizers: the Keras optimizers whose `learning_rate` decays.
        step: a variable holding the number of completed steps.
        total_steps: the run's step budget.
        schedule: one of LR_SCHEDULES.
        final_fraction: the factor of the initial rate at the last step.
    """

    def __init__(self, optimizers, step, total_steps: int, schedule: str, final_fraction: float):
        super().__init__()
        self.optimizers = list(optimizers)
        self.step = step
        self.total_steps = total_steps
        self.schedule = schedule
        self.final_fraction = final_fraction

    def on_train_batch_begin(self, batch, logs=None):
        completed = int(self.step.numpy())
        if self.schedule == "constant" or completed == 0:
            return
        ratio = decay_factor(self.schedule, completed, self.total_steps, self.final_fraction) / decay_factor(
            self.schedule, completed - 1, self.total_steps, self.final_fraction
        )
        for optimizer in self.optimizers:
            optimizer.learning_rate.assign(optimizer.learning_rate * ratio)
