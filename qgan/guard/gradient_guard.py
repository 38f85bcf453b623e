"""GradientGuard: a guarded optimizer step with policies, clipping, per-variable health and recovery."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

try:  # TensorFlow's own switch for lowering an If op to Switch/Merge (see _cond_run_as_function)
    from tensorflow.python.ops.control_flow_util_v2 import maybe_set_lowering_attr
except ImportError:  # pragma: no cover - the If ops are then lowered: slower, same results
    maybe_set_lowering_attr = None

from qgan.guard.clipping import clip_gradients
from qgan.guard.optimizer_state import StateSnapshot, learning_rate_variable, slot_variables, variable_name
from qgan.guard.policies import apply_with_policy, policy_applies
from qgan.guard.reporting import (
    _COUNTERS,
    _HEALTHY_STEP,
    CONSECUTIVE_BAD,
    HEALTHY,
    RECOVERIES_COUNT,
    GuardReports,
)

POLICIES = ("filter", "zero", "skip", "raise")
RECOVERIES = ("rollback", "stop", "none")
#: the branch budget is an int32
_MAX_SNAPSHOT_EVERY = int(np.iinfo(np.int32).max)


class GuardStop(RuntimeError):
    """Raised by recovery="stop" when no Keras `fit` is there to stop."""


def _cond_run_as_function(predicate, true_function, false_function):
    """tf.cond whose If op runs only the taken branch, as a function, instead of being lowered.

    Lowered to Switch/Merge (TensorFlow's default outside XLA), every op of the branch not taken
    still passes a dead tensor on each step; for a guard whose rare branch holds the whole
    recovery machinery, that costs more than the common branch's work.
    """
    result = tf.cond(predicate, true_function, false_function)
    if maybe_set_lowering_attr is not None and not tf.executing_eagerly():
        operation = result.op
        while operation.type == "Identity":
            operation = operation.inputs[0].op
        if operation.type in ("If", "StatelessIf"):
            maybe_set_lowering_attr(operation, lower_using_switch_merge=False)
    return result


class GradientGuard(GuardReports):
    """A guarded `optimizer.apply` for the gradients of a `tf.GradientTape`, for any Keras model.

    Each step:
    1. A non-finite `loss` updates nothing (it is a skipped, bad step).
    2. None gradients are dropped and counted by variable.
    3. Non-finite gradients are handled by `nonfinite`: "filter" leaves those variables untouched
       (optimizer moments included) and updates the rest; "zero" applies zeros in their place;
       "skip" updates nothing and leaves the optimizer state exactly as it was; "raise" raises
       NonFiniteError naming them: at once when eager; inside tf.function or XLA the step is
       skipped as by "skip" and the error is raised on the host after it, by
       `raise_if_nonfinite()` (GuardMonitor calls it after every batch of `fit`).
    4. The rest is clipped: element-wise to ±clip_value, then each variable's gradient to L2 norm
       clip_norm, then all of them jointly to global_clip_norm.
    5. A step is bad when its loss or any gradient is non-finite. Every `snapshot_every` healthy
       steps (finite, no gradient norm above large_grad_threshold) the variables and optimizer
       state are copied before the update. After `max_consecutive_bad` bad steps in a row,
       recovery "rollback" restores that copy and multiplies the learning rate by lr_backoff;
       "stop" asks Keras `fit` to stop (through GuardMonitor) or raises GuardStop outside fit.

    All counters are tf.Variables and every branch is a tf.cond/tf.where, so the guard runs
    eagerly, under tf.function and under XLA. Each kind of event is logged once per variable.
    Which branch a step takes depends on whether it is healthy and on the budget b
    (`_steps_to_snapshot`, kept between steps and checkpointed: the two branches round differently, so
    a resumed run must take the branches the uninterrupted one took to repeat it exactly):

    | step    | b before               | branch   | what it does                        | b after            |
    |---------|------------------------|----------|-------------------------------------|--------------------|
    | healthy | > 0 (≥ 0 w/o rollback) | fast     | clip, apply, count                  | b - 1 (rollback)   |
    | healthy | 0 (rollback) or -1     | general  | count, snapshot if due, apply       | steps to snapshot  |
    | bad     | any                    | general  | count, the policy's update, recover | -1                 |

    Args:
        nonfinite: "filter", "zero", "skip" or "raise".
        clip_value: element-wise bound; None = off.
        clip_norm: per-variable L2-norm bound; None = off.
        global_clip_norm: joint L2-norm bound; None = off.
        large_grad_threshold: a gradient whose L2 norm exceeds this counts as large; None = off.
        max_consecutive_bad: bad steps in a row that trigger recovery.
        recovery: "rollback", "stop" or "none".
        snapshot_every: healthy steps between snapshots for rollback.
        lr_backoff: factor on the learning rate at each rollback.
        name: prefix of counter names, log messages and metric names.
    """

    #: the state_variables() key of the budget that picks the next healthy step's branch
    BRANCH_BUDGET = "steps_to_snapshot"

    def __init__(
        self,
        nonfinite: str = "filter",
        clip_value: float | None = 1.0,
        clip_norm: float | None = None,
        global_clip_norm: float | None = None,
        large_grad_threshold: float | None = 100.0,
        max_consecutive_bad: int = 10,
        recovery: str = "rollback",
        snapshot_every: int = 10,
        lr_backoff: float = 0.5,
        name: str = "guard",
    ):
        if nonfinite not in POLICIES:
            raise ValueError(f"nonfinite={nonfinite!r} is not allowed; use one of {', '.join(POLICIES)}")
        if recovery not in RECOVERIES:
            raise ValueError(f"recovery={recovery!r} is not allowed; use one of {', '.join(RECOVERIES)}")
        for label, bound in (
            ("clip_value", clip_value),
            ("clip_norm", clip_norm),
            ("global_clip_norm", global_clip_norm),
            ("large_grad_threshold", large_grad_threshold),
        ):
            if bound is not None and not bound > 0:
                raise ValueError(f"{label}={bound!r} is not allowed; use a positive number or None")
        if not (isinstance(max_consecutive_bad, int) and max_consecutive_bad >= 1):
            raise ValueError(
                f"max_consecutive_bad={max_consecutive_bad!r} is not allowed; use an integer ≥ 1"
            )
        if not (isinstance(snapshot_every, int) and 1 <= snapshot_every <= _MAX_SNAPSHOT_EVERY):
            raise ValueError(
                f"snapshot_every={snapshot_every!r} is not allowed; "
                f"use an integer from 1 to {_MAX_SNAPSHOT_EVERY}"
            )
        if not 0 < lr_backoff <= 1:
            raise ValueError(f"lr_backoff={lr_backoff!r} is not allowed; use a number in (0, 1]")
        self.nonfinite = nonfinite
        self.clip_value = clip_value
        self.clip_norm = clip_norm
        self.global_clip_norm = global_clip_norm
        self.large_grad_threshold = large_grad_threshold
        self.max_consecutive_bad = max_consecutive_bad
        self.recovery = recovery
        self.snapshot_every = snapshot_every
        self.lr_backoff = lr_backoff
        self.name = name
        self.built = False
        #: set by GuardMonitor while a Keras fit runs: recovery="stop" then sets model.stop_training
        self.monitored = False
        self._logged = set()

    # ----------------------------------------------------------------- building
    def build(self, optimizer, variables) -> None:
        """Builds the optimizer on all `variables`, the counters and the snapshot (call eagerly, once).

        Args:
            optimizer: a Keras 3 optimizer.
            variables: every variable this guard will ever be asked to update.
        """
        variables = list(variables)
        if not optimizer.built:
            optimizer.build(variables)
        self.variable_names = [variable_name(variable) for variable in variables]
        self._variable_index = {id(variable): index for index, variable in enumerate(variables)}
        self._slots, shared = slot_variables(optimizer, variables)
        self._learning_rate = learning_rate_variable(optimizer)
        if self.recovery == "rollback" and self.lr_backoff != 1 and self._learning_rate is None:
            raise ValueError(
                f"{self.name}: recovery='rollback' with lr_backoff={self.lr_backoff} needs a settable "
                "learning rate, but the optimizer uses a schedule; pass lr_backoff=1.0"
            )
        self._state = [*variables, *[slot for slots in self._slots for slot in slots], *shared]
        self._state = [item for item in self._state if item is not self._learning_rate]
        count = len(variables)

        # step counters in one vector (see _COUNTERS) and per-variable counts (none, nonfinite, large)
        self._counters = tf.Variable(
            tf.zeros(len(_COUNTERS), tf.int64), trainable=False, name=f"{self.name}_counters"
        )
        self._variable_counts = tf.Variable(
            tf.zeros((3, count), tf.int64), trainable=False, name=f"{self.name}_variable_counts"
        )
        self._last_squared_norms = tf.Variable(
            tf.fill((count,), float("nan")), trainable=False, name=f"{self.name}_last_squared_norms"
        )
        # which branch a healthy step takes: -1 the general one (always safe: a guard restored from
        # a checkpoint without it starts there); k ≥ 0 a short one, after k more healthy steps one
        # that also takes a snapshot
        self._steps_to_snapshot = tf.Variable(
            tf.constant(-1, tf.int32), trainable=False, name=f"{self.name}_steps_to_snapshot"
        )
        self._stop_requested = tf.Variable(False, trainable=False, name=f"{self.name}_stop_requested")
        # under nonfinite="raise" in a compiled step: what was non-finite (the loss, then each variable)
        self._nonfinite_seen = tf.Variable(
            tf.zeros(count + 1, tf.bool), trainable=False, name=f"{self.name}_nonfinite_seen"
        )
        self._snapshot = StateSnapshot(self._state, self.name) if self.recovery == "rollback" else None
        self.built = True

    def state_variables(self) -> dict:
        """The guard's own state (counters, health, branch, snapshot) by name, for tf.train.Checkpoint."""
        state = {
            "counters": self._counters,
            "variable_counts": self._variable_counts,
            "last_squared_norms": self._last_squared_norms,
            "stop_requested": self._stop_requested,
            self.BRANCH_BUDGET: self._steps_to_snapshot,
        }
        if self._snapshot is not None:
            state.update({f"snapshot_{dtype}": copy for dtype, copy in self._snapshot.copies.items()})
        return state

    # ----------------------------------------------------------------- the step
    def apply_gradients(self, optimizer, grads, variables, loss=None) -> dict:
        """Applies what the policy allows of `grads` and returns what happened in this step.

        Args:
            optimizer: the Keras optimizer the guard was built with.
            grads: gradients from tape.gradient; entries may be None.
            variables: the variables, in the order of grads (a subset of those given to build).
            loss: the step's loss; when given and non-finite, nothing is updated.

        Returns:
            A dict of scalar tensors: applied (bool: some variable was updated), loss_finite,
            nonfinite_grads, none_grads and large_grads (numbers of variables), global_norm (of
            the finite gradients, before clipping), bad (bool) and recovered (bool: a rollback or
            stop happened after this step).

        Raises:
            NonFiniteError: under nonfinite="raise", eagerly (inside tf.function, see
                raise_if_nonfinite).
            GuardStop: recovery="stop" triggered outside a monitored Keras fit.
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
                raise ValueError(f"variable {variable_name(variable)!r} was not given to {self.name}.build")
            indices.append(self._variable_index[id(variable)])
        count = len(self.variable_names)

        present = [
            (grad, variable, index)
            for grad, variable, index in zip(grads, variables, indices)
            if grad is not None
        ]
        present_grads = [tf.convert_to_tensor(grad) for grad, _, _ in present]
        present_variables = [variable for _, variable, _ in present]
        present_indices = [index for _, _, index in present]
        none_mask = [0] * count
        for grad, index in zip(grads, indices):
            if grad is None:
                none_mask[index] = 1

        loss_finite = tf.constant(True) if loss is None else tf.reduce_all(tf.math.is_finite(loss))
        # a NaN/Inf entry makes the squared norm NaN/Inf; so does a norm beyond float32 (~1.8e19)
        if present:
            squares = tf.stack(
                [tf.reduce_sum(tf.square(tf.cast(grad, tf.float32))) for grad in present_grads]
            )
        else:
            squares = tf.zeros(0)
        if self.nonfinite == "raise":
            check = self._raise_on_nonfinite(loss_finite, tf.math.is_finite(squares), present_indices)
            with tf.control_dependencies(check):
                loss_finite = tf.identity(loss_finite)
                squares = tf.identity(squares)
        limit = (
            float(np.finfo(np.float32).max)
            if self.large_grad_threshold is None
            else self.large_grad_threshold**2
        )
        # healthy: finite loss, every gradient finite and not large (NaN compares as not ≤ limit)
        healthy = tf.logical_and(loss_finite, tf.reduce_all(squares <= limit))

        def flags():
            """Per present gradient: finite, large; and the step's all-finite, bad and applied flags."""
            finite = tf.math.is_finite(squares)
            large = tf.logical_and(finite, squares > limit)  # never, when the limit is float32's maximum
            all_finite = tf.reduce_all(finite)
            bad = tf.logical_not(tf.logical_and(loss_finite, all_finite))
            applied = (
                policy_applies(self.nonfinite, loss_finite, all_finite, finite)
                if present
                else tf.constant(False)
            )
            return finite, large, all_finite, bad, applied

        def per_variable(values):
            if not present:
                return tf.zeros(count, tf.int64)
            return tf.scatter_nd([[index] for index in present_indices], tf.cast(values, tf.int64), [count])

        def general_path():
            """Any step: counts, snapshot, the policy's update, recovery; sets the fast-step budget."""
            finite, large, all_finite, bad, applied = flags()
            restart_run = tf.constant(
                [0 if index == CONSECUTIVE_BAD else 1 for index in range(len(_COUNTERS))], tf.int64
            )
            take_snapshot = tf.logical_and(
                healthy, tf.equal(self._counters[HEALTHY] % self.snapshot_every, 0)
            )
            counters = self._counters + tf.cast(
                tf.stack([True, tf.logical_not(applied), tf.logical_not(loss_finite), bad, False, healthy]),
                tf.int64,
            )
            counters = tf.where(bad, counters, counters * restart_run)
            if self.recovery == "none":
                trigger = tf.constant(False)
            else:
                trigger = counters[CONSECUTIVE_BAD] >= self.max_consecutive_bad
                one_more_recovery = tf.one_hot(RECOVERIES_COUNT, len(_COUNTERS), dtype=tf.int64)
                counters = tf.where(trigger, counters * restart_run + one_more_recovery, counters)
            if self._snapshot is not None:
                snapshot_taken = tf.cond(take_snapshot, self._snapshot.save, lambda: tf.constant(False))
            else:
                snapshot_taken = tf.constant(False)
            with tf.control_dependencies([snapshot_taken]):
                done = apply_with_policy(
                    self.nonfinite,
                    optimizer,
                    present_grads,
                    present_variables,
                    [self._slots[index] for index in present_indices],
                    finite,
                    loss_finite,
                    all_finite,
                    self._clip,
                )
            with tf.control_dependencies([done]):
                recovered = tf.cond(trigger, self._recover, lambda: tf.constant(False))
            with tf.control_dependencies([recovered]):
                self._counters.assign(counters)
                counts = tf.stack([tf.zeros(count, tf.int64), per_variable(~finite), per_variable(large)])
                self._variable_counts.assign_add(counts)
                # after a healthy step, the healthy steps before the next snapshot is due
                if self._snapshot is not None:
                    every = self.snapshot_every
                    until_snapshot = tf.cast((every - counters[HEALTHY] % every) % every, tf.int32)
                else:  # no snapshots: any budget ≥ 0 sends the next healthy step down the short branch
                    until_snapshot = tf.constant(0, tf.int32)
                self._steps_to_snapshot.assign(tf.where(healthy, until_snapshot, -1))
                return tf.identity(recovered)

        def fast_path():
            """A healthy step after a healthy one, no snapshot due: apply and count it."""
            self._apply_clipped(optimizer, present_grads, present_variables)
            if self._snapshot is not None:
                self._steps_to_snapshot.assign_sub(1)
            self._counters.assign_add(tf.constant(_HEALTHY_STEP, tf.int64))
            return tf.constant(False)

        if present:
            # a healthy step after a healthy one takes the short branch while no snapshot is due;
            # every other step (a due snapshot included) takes the general one
            fast = tf.logical_and(
                healthy, self._steps_to_snapshot > (0 if self._snapshot is not None else -1)
            )
            recovered = _cond_run_as_function(fast, fast_path, general_path)
        else:
            recovered = general_path()
        updates = [recovered]
        with tf.control_dependencies([recovered]):
            if any(none_mask):
                none_now = tf.constant([none_mask, [0] * count, [0] * count], tf.int64)
                updates.append(self._variable_counts.assign_add(none_now))
            if present_indices == list(range(count)):
                updates.append(self._last_squared_norms.assign(squares))
            elif present:
                updates.append(
                    self._last_squared_norms.scatter_nd_update(
                        [[index] for index in present_indices], squares
                    )
                )
        with tf.control_dependencies(updates):
            recovered = tf.identity(recovered)
        if tf.executing_eagerly():
            self.log_events()
            if self.recovery == "stop" and bool(recovered) and not self.monitored:
                raise GuardStop(self._stop_message())
        elif self.recovery == "stop" and not self.monitored:
            with tf.control_dependencies([recovered]):
                tf.debugging.Assert(tf.logical_not(self._stop_requested), [self._stop_message()])
        finite, large, _, bad, applied = flags()  # for the report; unused entries cost nothing in a graph
        return {
            "applied": applied,
            "loss_finite": loss_finite,
            "nonfinite_grads": tf.reduce_sum(tf.cast(~finite, tf.int64)),
            "none_grads": tf.constant(sum(none_mask), tf.int64),
            "large_grads": tf.reduce_sum(tf.cast(large, tf.int64)),
            "global_norm": tf.sqrt(tf.reduce_sum(tf.where(finite, squares, 0.0))),
            "bad": bad,
            "recovered": recovered,
        }

    def _clip(self, grads):
        return clip_gradients(grads, self.clip_value, self.clip_norm, self.global_clip_norm)

    def _apply_clipped(self, optimizer, grads, variables):
        optimizer.apply(self._clip(grads), variables)

    def _recover(self):
        if self.recovery == "stop":
            self._stop_requested.assign(True)
        else:
            if self._snapshot is not None:  # traced even when recovery="none" never takes this branch
                self._snapshot.restore()
            if self._learning_rate is not None:
                self._learning_rate.assign(self._learning_rate * self.lr_backoff)
        return tf.constant(True)
