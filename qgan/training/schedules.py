"""Learning-rate decay over a run: base rate × schedule factor × the guard's back-off, set every step."""

from __future__ import annotations

import math

import keras

from qgan.training.config import LR_SCHEDULES


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
    """Sets each learning rate to base·f(step)·back-off before every generator step.

    The rate is computed from the base rate, the step and the step budget, never from the rate
    the optimizer holds: a run extended with a larger budget follows the new schedule to its
    end, and a guard's back-off (a separate factor, from its rollback count) is kept.

    Args:
        rates: (optimizer, base learning rate, guard or None) per decaying optimizer; the guard's
            `learning_rate_factor` is the back-off of its rollbacks so far.
        step: a variable holding the number of completed steps.
        total_steps: the run's step budget.
        schedule: one of LR_SCHEDULES.
        final_fraction: the factor of the base rate at the last step.
    """

    def __init__(self, rates, step, total_steps: int, schedule: str, final_fraction: float):
        super().__init__()
        self.rates = list(rates)
        self.step = step
        self.total_steps = total_steps
        self.schedule = schedule
        self.final_fraction = final_fraction

    def on_train_batch_begin(self, batch, logs=None):
        factor = decay_factor(self.schedule, int(self.step.numpy()), self.total_steps, self.final_fraction)
        for optimizer, base_rate, guard in self.rates:
            backoff = 1.0 if guard is None else guard.learning_rate_factor
            optimizer.learning_rate.assign(base_rate * factor * backoff)
