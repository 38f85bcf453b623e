"""GradientGuard: a guarded optimizer step with policies, clipping, per-variable health and recovery."""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

try:  # TensorFlow's own switch for lowering an If op to Switch/Merge (see _cond_run_as_function)
    from tensorflow.python.ops.control_flow_util_v2 import maybe_set_lowering_attr
except ImportError:  # pragma: no cover - the If ops are then lowered: slower, same results
    maybe_set_lowering_attr = None

from qgan.guard.clipping import clip_gradients

logger = logging.getLogger("qgan.guard")

POLICIES = ("filter", "zero", "skip", "raise")
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
RECOVERIES = ("rollback", "stop", "none")
#: the branch budget is an int32
_MAX_SNAPSHOT_EVERY = int(np.iinfo(np.int32).max)


class NonFiniteError(FloatingPointError):
    """Raised by the "raise" policy, naming the variables whose gradient held NaN/Inf."""


class GuardStop(RuntimeError):
    """Raised by recovery="stop" when no Keras `fit` is there to stop."""


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


def _learning_rate_variable(optimizer):
    """The optimizer's learning-rate variable (unwrapping a LossScaleOptimizer), or None for a schedule."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    rate = getattr(optimizer, "_learning_rate", None)
    return rate if isinstance(rate, keras.Variable) else None


def _dtype_name(item) -> str:
    """The dtype name of a tf.Variable or Keras variable."""
    return tf.as_dtype(item.dtype).name


def _flatten(items) -> tf.Tensor:
    """The items' values, flattened and concatenated into one vector."""
    return tf.concat([tf.reshape(item, [-1]) for item in items], axis=0)


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


class GradientGuard:
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
    eagerly, under tf.function and under XLA. A healthy step after a healthy one takes a short
    branch (clip, apply, counter increments; another one adds the snapshot when it is due);
    every other step takes the general one, which does all of the above. Each kind of event is
    logged once per variable.

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
        self._learning_rate = _learning_rate_variable(optimizer)
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
        # which branch a healthy step takes: -1 the general one (always safe, so this is not
        # checkpointed); k ≥ 0 a short one, after k more healthy steps one that also takes a snapshot
        self._steps_to_snapshot = tf.Variable(
            tf.constant(-1, tf.int32), trainable=False, name=f"{self.name}_steps_to_snapshot"
        )
        self._stop_requested = tf.Variable(False, trainable=False, name=f"{self.name}_stop_requested")
        # under nonfinite="raise" in a compiled step: what was non-finite (the loss, then each variable)
        self._nonfinite_seen = tf.Variable(
            tf.zeros(count + 1, tf.bool), trainable=False, name=f"{self.name}_nonfinite_seen"
        )
        # the snapshot for rollback: one flat copy per dtype, so the step's branch takes few inputs
        self._snapshot = {}
        if self.recovery == "rollback":
            for dtype in sorted({_dtype_name(item) for item in self._state}):
                self._snapshot[dtype] = tf.Variable(
                    _flatten(self._state_of(dtype)), trainable=False, name=f"{self.name}_snapshot_{dtype}"
                )
        self.built = True

    def state_variables(self) -> dict:
        """The guard's own state (counters, health, snapshot) by name, for tf.train.Checkpoint."""
        state = {
            "counters": self._counters,
            "variable_counts": self._variable_counts,
            "last_squared_norms": self._last_squared_norms,
            "stop_requested": self._stop_requested,
        }
        state.update({f"snapshot_{dtype}": copy for dtype, copy in self._snapshot.items()})
        return state

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
        counters = tf.convert_to_tensor(self._counters)
        variable_totals = tf.reduce_sum(self._variable_counts, axis=1)
        return {
            "skipped_steps": counters[SKIPPED],
            "nonfinite_loss_steps": counters[NONFINITE_LOSS],
            "nonfinite_grads": variable_totals[1],
            "none_grads": variable_totals[0],
            "large_grads": variable_totals[2],
            "consecutive_bad": counters[CONSECUTIVE_BAD],
            "recoveries": counters[RECOVERIES_COUNT],
        }

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
            applied = self._applies(loss_finite, all_finite, finite) if present else tf.constant(False)
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
            if self._snapshot:
                snapshot_taken = tf.cond(take_snapshot, self._save_snapshot, lambda: tf.constant(False))
            else:
                snapshot_taken = tf.constant(False)
            with tf.control_dependencies([snapshot_taken]):
                done = self._apply(
                    optimizer,
                    present_grads,
                    present_variables,
                    present_indices,
                    finite,
                    loss_finite,
                    all_finite,
                )
            with tf.control_dependencies([done]):
                recovered = tf.cond(trigger, self._recover, lambda: tf.constant(False))
            with tf.control_dependencies([recovered]):
                self._counters.assign(counters)
                counts = tf.stack([tf.zeros(count, tf.int64), per_variable(~finite), per_variable(large)])
                self._variable_counts.assign_add(counts)
                # after a healthy step, the healthy steps before the next snapshot is due
                if self._snapshot:
                    every = self.snapshot_every
                    until_snapshot = tf.cast((every - counters[HEALTHY] % every) % every, tf.int32)
                else:  # no snapshots: any budget ≥ 0 sends the next healthy step down the short branch
                    until_snapshot = tf.constant(0, tf.int32)
                self._steps_to_snapshot.assign(tf.where(healthy, until_snapshot, -1))
                return tf.identity(recovered)

        def fast_path():
            """A healthy step after a healthy one, no snapshot due: apply and count it."""
            self._apply_clipped(optimizer, present_grads, present_variables)
            if self._snapshot:
                self._steps_to_snapshot.assign_sub(1)
            self._counters.assign_add(tf.constant(_HEALTHY_STEP, tf.int64))
            return tf.constant(False)

        def snapshot_path():
            """A healthy step after a healthy one, snapshot due: take it, apply and count the step."""
            with tf.control_dependencies([self._save_snapshot()]):
                self._apply_clipped(optimizer, present_grads, present_variables)
            self._steps_to_snapshot.assign(self.snapshot_every - 1)
            self._counters.assign_add(tf.constant(_HEALTHY_STEP, tf.int64))
            return tf.constant(False)

        if present:
            budget = self._steps_to_snapshot
            if self._snapshot:
                fast = tf.logical_and(healthy, budget > 0)

                def other_paths():
                    due = tf.logical_and(healthy, tf.equal(budget, 0))
                    return _cond_run_as_function(due, snapshot_path, general_path)

                recovered = _cond_run_as_function(fast, fast_path, other_paths)
            else:
                fast = tf.logical_and(healthy, budget >= 0)
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

    def _applies(self, loss_finite, all_finite, finite):
        """Whether the policy updates some variable in this step."""
        if self.nonfinite in ("skip", "raise"):
            return tf.logical_and(loss_finite, all_finite)
        if self.nonfinite == "zero":
            return loss_finite
        return tf.logical_and(loss_finite, tf.reduce_any(finite))

    def _apply_clipped(self, optimizer, grads, variables):
        optimizer.apply(
            clip_gradients(grads, self.clip_value, self.clip_norm, self.global_clip_norm), variables
        )

    def _apply(self, optimizer, grads, variables, indices, finite, loss_finite, all_finite):
        """Applies the clipped gradients as the policy says; returns whether anything was updated."""
        if not variables:
            return tf.constant(False)

        def clipped(grads):
            return clip_gradients(grads, self.clip_value, self.clip_norm, self.global_clip_norm)

        def zeroed():
            return [
                tf.where(finite[position], grad, tf.zeros_like(grad)) for position, grad in enumerate(grads)
            ]

        def apply_all():
            optimizer.apply(clipped(grads), variables)
            return tf.constant(True)

        def nothing():
            return tf.constant(False)

        if self.nonfinite in ("skip", "raise"):
            return tf.cond(tf.logical_and(loss_finite, all_finite), apply_all, nothing)

        def apply_zeroed():
            optimizer.apply(clipped(zeroed()), variables)
            return tf.constant(True)

        if self.nonfinite == "zero":
            return tf.cond(loss_finite, lambda: tf.cond(all_finite, apply_all, apply_zeroed), nothing)

        slots = [self._slots[index] for index in indices]

        def apply_finite_ones():
            saved = [
                [tf.identity(item) for item in [variable, *own]] for variable, own in zip(variables, slots)
            ]
            with tf.control_dependencies([item for group in saved for item in group]):
                optimizer.apply(clipped(zeroed()), variables)
            for position, (old_values, variable, own) in enumerate(zip(saved, variables, slots)):
                for old, current in zip(old_values, [variable, *own]):
                    current.assign(tf.where(finite[position], current, old))
            return tf.constant(True)

        some_finite = tf.reduce_any(finite)
        return tf.cond(
            tf.logical_not(loss_finite),
            nothing,
            lambda: tf.cond(all_finite, apply_all, lambda: tf.cond(some_finite, apply_finite_ones, nothing)),
        )

    def _state_of(self, dtype: str) -> list:
        """The state items (variables, optimizer state) of one dtype, in a fixed order."""
        return [item for item in self._state if _dtype_name(item) == dtype]

    def _save_snapshot(self):
        for dtype, copy in self._snapshot.items():
            copy.assign(_flatten(self._state_of(dtype)))
        return tf.constant(True)

    def _recover(self):
        if self.recovery == "stop":
            self._stop_requested.assign(True)
        else:
            for dtype, copy in self._snapshot.items():
                items = self._state_of(dtype)
                pieces = tf.split(copy, [int(np.prod(item.shape)) for item in items])
                for item, piece in zip(items, pieces):
                    item.assign(tf.reshape(piece, item.shape))
            if self._learning_rate is not None:
                self._learning_rate.assign(self._learning_rate * self.lr_backoff)
        return tf.constant(True)

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
