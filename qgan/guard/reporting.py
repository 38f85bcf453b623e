"""What a GradientGuard reports: its counters, per-variable health, event logs and the deferred raise."""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

logger = logging.getLogger("qgan.guard")

_COUNTERS = (
    "steps",
    "skipped_steps",
    "nonfinite_loss_steps",
    "consecutive_bad",
    "recoveries",
    "healthy_steps",
)
STEPS, SKIPPED, NONFINITE_LOSS, CONSECUTIVE_BAD, RECOVERIES_COUNT, HEALTHY = range(len(_COUNTERS))
#: what a healthy step adds to the counters
_HEALTHY_STEP = tuple(int(index in (STEPS, HEALTHY)) for index in range(len(_COUNTERS)))


class NonFiniteError(FloatingPointError):
    """Raised by the "raise" policy, naming the variables whose gradient held NaN/Inf."""


class GuardReports:
    """The reporting half of GradientGuard: reads the counters and health variables it keeps.

    Expects `_counters`, `_variable_counts`, `_last_squared_norms`, `_stop_requested`,
    `_nonfinite_seen`, `_learning_rate`, `variable_names`, `recovery`, `lr_backoff`,
    `nonfinite`, `large_grad_threshold`, `max_consecutive_bad`, `name`, `built` and `_logged`.
    """

    # ----------------------------------------------------------------- counters
    @property
    def steps(self) -> int:
        """Steps seen."""
        return int(self._counters[STEPS].numpy())

    @property
    def skipped_steps(self) -> int:
        """Steps in which no variable was updated."""
        return int(self._counters[SKIPPED].numpy())

    @property
    def nonfinite_loss_steps(self) -> int:
        """Steps whose loss was NaN or Inf."""
        return int(self._counters[NONFINITE_LOSS].numpy())

    @property
    def consecutive_bad(self) -> int:
        """Bad steps (non-finite loss or gradient) in a row up to now."""
        return int(self._counters[CONSECUTIVE_BAD].numpy())

    @property
    def recoveries(self) -> int:
        """Rollbacks (or stop requests) so far."""
        return int(self._counters[RECOVERIES_COUNT].numpy())

    @property
    def learning_rate_factor(self) -> float:
        """The product of the back-offs applied so far: lr_backoff^rollbacks (1 without rollback)."""
        if self.recovery != "rollback":
            return 1.0
        return float(self.lr_backoff**self.recoveries)

    @property
    def stop_requested(self) -> bool:
        """Whether recovery="stop" has asked training to stop."""
        return bool(self._stop_requested.numpy())

    def clear_stop(self) -> None:
        """Withdraws a stop request (a resumed run trains on instead of stopping at once)."""
        if self.built:
            self._stop_requested.assign(False)

    def totals(self) -> dict:
        """Cumulative counters as int64 scalar tensors (usable inside tf.function), for logs.

        Returns:
            skipped_steps, nonfinite_loss_steps, nonfinite_grads, none_grads and large_grads
            (summed over variables), consecutive_bad and recoveries.
        """
        return _named_totals(
            tf.convert_to_tensor(self._counters), tf.reduce_sum(self._variable_counts, axis=1)
        )

    def host_totals(self) -> dict:
        """The counters of `totals` as Python ints, read from two variables (cheap after every step)."""
        totals = _named_totals(self._counters.numpy(), self._variable_counts.numpy().sum(axis=1))
        return {name: int(value) for name, value in totals.items()}

    def health(self) -> dict[str, dict]:
        """Per variable name: how often its gradient was None, non-finite, large, and its last norm."""
        none, nonfinite, large = self._variable_counts.numpy()
        norms = np.sqrt(self._last_squared_norms.numpy())
        return {
            name: {
                "none": int(none[index]),
                "nonfinite": int(nonfinite[index]),
                "large": int(large[index]),
                "last_norm": float(norms[index]),
            }
            for index, name in enumerate(self.variable_names)
        }

    def _stop_message(self) -> str:
        return (
            f"{self.name}: {self.max_consecutive_bad} bad steps in a row (non-finite loss or gradients); "
            "training stopped by recovery='stop'"
        )

    def _raise_on_nonfinite(self, loss_finite, finite_flags, indices) -> list:
        """Raises NonFiniteError eagerly; in a graph, records what is not finite for the host to raise."""
        bad = tf.logical_not(tf.concat([[loss_finite], finite_flags], axis=0))
        if tf.executing_eagerly():
            if bool(tf.reduce_any(bad)):
                self._nonfinite_seen.assign(self._seen(bad, indices))
                self.raise_if_nonfinite()
            return []
        # no string op here: XLA cannot compile them, so the names are joined on the host
        return [self._nonfinite_seen.assign(tf.logical_or(self._nonfinite_seen, self._seen(bad, indices)))]

    def _seen(self, bad, indices):
        positions = [[0]] + [[index + 1] for index in indices]
        return tf.scatter_nd(positions, tf.cast(bad, tf.int32), [len(self.variable_names) + 1]) > 0

    def raise_if_nonfinite(self) -> None:
        """Raises NonFiniteError naming what a nonfinite="raise" step found non-finite, and clears it.

        A compiled step cannot raise with names, so it records them; call this after each
        compiled step of a custom loop (GuardMonitor does it in Keras `fit`).
        """
        if not self.built:
            return
        seen = self._nonfinite_seen.numpy()
        if not seen.any():
            return
        self._nonfinite_seen.assign(tf.zeros_like(self._nonfinite_seen))
        culprits = [name for name, flag in zip(["loss", *self.variable_names], seen) if flag]
        raise NonFiniteError(f"{self.name}: non-finite values in: {', '.join(culprits)}")

    # ----------------------------------------------------------------- logging
    def log_events(self) -> None:
        """Logs each kind of event once per variable (and a non-finite loss once), by name."""
        if not self.built:
            return
        if self.nonfinite_loss_steps and "loss" not in self._logged:
            self._logged.add("loss")
            logger.warning("%s: non-finite loss; such steps update nothing", self.name)
        effect = {
            "filter": "that variable is left untouched in such steps",
            "zero": "zeros are applied in its place",
            "skip": "such steps update nothing",
            "raise": "training was stopped",
        }[self.nonfinite]
        messages = {
            "none": "gradient of %r was None; it is dropped",
            "nonfinite": f"gradient of %r held NaN/Inf; {effect}",
            "large": f"gradient of %r had a norm above {self.large_grad_threshold}",
        }
        for name, record in self.health().items():
            for kind, message in messages.items():
                if record[kind] and (kind, name) not in self._logged:
                    self._logged.add((kind, name))
                    logger.warning("%s: " + message, self.name, name)
        if self.recoveries and ("recovery", self.recoveries) not in self._logged:
            self._logged.add(("recovery", self.recoveries))
            if self.recovery == "rollback":
                rate = (
                    ""
                    if self._learning_rate is None
                    else f", learning rate now {float(self._learning_rate.numpy()):.3g}"
                )
                logger.warning(
                    "%s: %d bad steps in a row; rolled back to the last healthy snapshot (recovery %d%s)",
                    self.name,
                    self.max_consecutive_bad,
                    self.recoveries,
                    rate,
                )
            else:
                logger.warning("%s", self._stop_message())


def _named_totals(counters, variable_totals) -> dict:
    """The reported counters by name, from the counter vector and the per-kind sums over variables."""
    return {
        "skipped_steps": counters[SKIPPED],
        "nonfinite_loss_steps": counters[NONFINITE_LOSS],
        "nonfinite_grads": variable_totals[1],
        "none_grads": variable_totals[0],
        "large_grads": variable_totals[2],
        "consecutive_bad": counters[CONSECUTIVE_BAD],
        "recoveries": counters[RECOVERIES_COUNT],
    }
