"""qgan.guard.GradientGuard on exact scripted sequences of finite and non-finite steps, for every policy."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qgan.guard import GradientGuard, GuardStop, NonFiniteError

NAN = float("nan")
INF = float("inf")
f32 = np.float32
LR = f32(0.1)
MOMENTUM = f32(0.9)
RAISE = "raise"

# (gradient of a, gradient of b, loss); a = [1, 2], b = [3] at the start; clip_value = 1
SCRIPT = [
    ([0.5, 5.0], [1.0], 1.0),  # finite; a's 5 is clipped to 1
    ([1.0, 1.0], [1.0], NAN),  # non-finite loss
    ([NAN, 1.0], [2.0], 1.0),  # NaN in a's gradient; b's 2 is clipped to 1
    ([1.0, -1.0], [INF], 1.0),  # Inf in b's gradient
    (None, [1.0], 1.0),  # no gradient for a
    ([1.0, 1.0], [-1.0], 1.0),  # finite again
]
# what each policy hands the optimizer at each step: variable → gradient, or RAISE
FIRST = {"a": [0.5, 1.0], "b": [1.0]}
LAST = {"a": [1.0, 1.0], "b": [-1.0]}
PLANS = {
    "filter": [FIRST, {}, {"b": [1.0]}, {"a": [1.0, -1.0]}, {"b": [1.0]}, LAST],
    "zero": [FIRST, {}, {"a": [0.0, 0.0], "b": [1.0]}, {"a": [1.0, -1.0], "b": [0.0]}, {"b": [1.0]}, LAST],
    "skip": [FIRST, {}, {}, {}, {"b": [1.0]}, LAST],
    "raise": [FIRST, RAISE, RAISE, RAISE, {"b": [1.0]}, LAST],
}
# counters after the whole script: steps, skipped_steps, nonfinite_loss_steps, optimizer iterations
FINAL_COUNTS = {
    "filter": (6, 1, 1, 5),
    "zero": (6, 1, 1, 5),
    "skip": (6, 3, 1, 3),
    "raise": (3, 0, 0, 3),
}


class Reference:
    """SGD with momentum in float32 NumPy, applying a plan: variables not in it keep weights and moments."""

    def __init__(self):
        self.weights = {"a": np.array([1.0, 2.0], f32), "b": np.array([3.0], f32)}
        self.moments = {name: np.zeros_like(value) for name, value in self.weights.items()}
        self.iterations = 0

    def apply(self, plan):
        for name, gradient in plan.items():
            self.moments[name] = self.moments[name] * MOMENTUM - np.array(gradient, f32) * LR
            self.weights[name] = self.weights[name] + self.moments[name]
        self.iterations += bool(plan)


def make_setup(optimizer, **options):
    a = keras.Variable(np.array([1.0, 2.0], np.float32), name="a")
    b = keras.Variable(np.array([3.0], np.float32), name="b")
    options.setdefault("clip_value", 1.0)
    guard = GradientGuard(name="test_guard", **options)
    guard.build(optimizer, [a, b])
    return a, b, guard


def stepper(guard, optimizer, a, b, compiled):
    """step(grad_a, grad_b, loss) → report, eagerly or through tf.function (one trace per None pattern)."""

    def step(grad_a, grad_b, loss):
        grads = [None if grad_a is None else tf.constant(grad_a, tf.float32), tf.constant(grad_b, tf.float32)]
        return guard.apply_gradients(optimizer, grads, [a, b], loss=tf.constant(loss, tf.float32))

    if not compiled:
        return step
    with_a = tf.function(lambda ga, gb, loss: guard.apply_gradients(optimizer, [ga, gb], [a, b], loss=loss))
    without_a = tf.function(lambda gb, loss: guard.apply_gradients(optimizer, [None, gb], [a, b], loss=loss))

    def compiled_step(grad_a, grad_b, loss):
        loss = tf.constant(loss, tf.float32)
        if grad_a is None:
            return without_a(tf.constant(grad_b, tf.float32), loss)
        return with_a(tf.constant(grad_a, tf.float32), tf.constant(grad_b, tf.float32), loss)

    return compiled_step


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf_function"])
@pytest.mark.parametrize("policy", list(PLANS))
def test_scripted_sequence(policy, compiled):
    optimizer = keras.optimizers.SGD(learning_rate=float(LR), momentum=float(MOMENTUM))
    a, b, guard = make_setup(optimizer, nonfinite=policy)
    step = stepper(guard, optimizer, a, b, compiled)
    reference = Reference()
    slots = {variable.name: variable for variable in optimizer.variables}
    moments = {"a": slots["a_momentum"], "b": slots["b_momentum"]}
    # a compiled step cannot raise with names: it skips the step, and the host raises after it
    compiled_raise = compiled and policy == "raise"
    plans = PLANS["skip"] if compiled_raise else PLANS[policy]
    for number, ((grad_a, grad_b, loss), plan) in enumerate(zip(SCRIPT, plans), 1):
        culprits = ", ".join(
            name
            for name, value in (("loss", loss), ("a", grad_a), ("b", grad_b))
            if value is not None and not np.all(np.isfinite(value))
        )
        if compiled_raise:
            step(grad_a, grad_b, loss)
            reference.apply(plan)
            if culprits:
                with pytest.raises(NonFiniteError, match=f"test_guard: non-finite values in: {culprits}$"):
                    guard.raise_if_nonfinite()
            guard.raise_if_nonfinite()  # cleared: raises once per bad step
        elif plan is RAISE:
            with pytest.raises(NonFiniteError, match=f"test_guard: non-finite values in: {culprits}$"):
                step(grad_a, grad_b, loss)
        else:
            report = step(grad_a, grad_b, loss)
            reference.apply(plan)
            assert bool(report["applied"]) == bool(plan), number
            assert bool(report["loss_finite"]) == (loss == loss), number
            expected_nonfinite = sum(
                grad is not None and not np.all(np.isfinite(grad)) for grad in (grad_a, grad_b)
            )
            assert int(report["nonfinite_grads"]) == expected_nonfinite, number
            assert int(report["none_grads"]) == (grad_a is None), number
            assert int(report["large_grads"]) == 0, number
        for name, variable in (("a", a), ("b", b)):
            np.testing.assert_array_equal(
                variable.numpy(), reference.weights[name], err_msg=f"{name}, step {number}"
            )
            np.testing.assert_array_equal(
                moments[name].numpy(), reference.moments[name], err_msg=f"{name} moment, step {number}"
            )
        assert int(optimizer.iterations.numpy()) == reference.iterations, number
    steps, skipped, nonfinite_loss, iterations = FINAL_COUNTS["skip" if compiled_raise else policy]
    assert (guard.steps, guard.skipped_steps, guard.nonfinite_loss_steps) == (steps, skipped, nonfinite_loss)
    assert int(optimizer.iterations.numpy()) == iterations
    assert guard.consecutive_bad == 0 and guard.recoveries == 0
    recorded = policy != "raise" or compiled
    health = guard.health()
    assert {
        name: {k: v for k, v in record.items() if k != "last_norm"} for name, record in health.items()
    } == {
        "a": {"none": 1, "nonfinite": int(recorded), "large": 0},
        "b": {"none": 0, "nonfinite": int(recorded), "large": 0},
    }
    assert health["b"]["last_norm"] == 1.0  # the last step's gradient of b, before clipping


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf_function"])
def test_filtered_variable_keeps_its_adam_moments(compiled):
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    a, b, guard = make_setup(optimizer)
    step = stepper(guard, optimizer, a, b, compiled)
    step([0.5, -0.5], [0.25], 1.0)
    slots = {variable.name: variable for variable in optimizer.variables}
    before = {name: variable.numpy().copy() for name, variable in slots.items()}
    a_before, b_before = a.numpy().copy(), b.numpy().copy()
    step([NAN, 0.5], [0.25], 1.0)
    np.testing.assert_array_equal(a.numpy(), a_before)
    np.testing.assert_array_equal(slots["a_momentum"].numpy(), before["a_momentum"])
    np.testing.assert_array_equal(slots["a_velocity"].numpy(), before["a_velocity"])
    assert not np.array_equal(b.numpy(), b_before)
    assert not np.array_equal(slots["b_momentum"].numpy(), before["b_momentum"])
    assert int(optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize(
    "optimizer_class",
    [
        keras.optimizers.Adam,
        keras.optimizers.AdamW,
        keras.optimizers.Nadam,
        keras.optimizers.RMSprop,
        keras.optimizers.Adagrad,
        keras.optimizers.Adadelta,
        keras.optimizers.Lion,
        keras.optimizers.Ftrl,
    ],
)
def test_filter_restores_the_per_variable_state_of_every_keras_optimizer(optimizer_class):
    kwargs = {"momentum": 0.9} if optimizer_class is keras.optimizers.RMSprop else {}
    optimizer = optimizer_class(learning_rate=0.01, **kwargs)
    a, b, guard = make_setup(optimizer)
    step = stepper(guard, optimizer, a, b, compiled=False)
    step([0.5, -0.5], [0.25], 1.0)
    owned = [slot.name for slots in guard._slots for slot in slots]
    per_variable = [variable for variable in optimizer.variables if tuple(variable.shape) in ((2,), (1,))]
    assert sorted(owned) == sorted(variable.name for variable in per_variable)
    a_state = [variable for variable in optimizer.variables if variable.name.startswith("a_")]
    a_before = [a.numpy().copy()] + [variable.numpy().copy() for variable in a_state]
    step([NAN, 0.5], [0.25], 1.0)
    for old, new in zip(a_before, [a.numpy()] + [variable.numpy() for variable in a_state]):
        np.testing.assert_array_equal(new, old)


@pytest.mark.parametrize("policy", ["filter", "zero", "skip"])
def test_all_gradients_bad_leaves_the_optimizer_untouched(policy):
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    a, b, guard = make_setup(optimizer, nonfinite=policy)
    step = stepper(guard, optimizer, a, b, compiled=False)
    step([0.5, -0.5], [0.25], 1.0)
    state = [variable.numpy().copy() for variable in [a, b, *optimizer.variables]]
    report = step([NAN, 0.0], [INF], NAN)
    assert not bool(report["applied"])
    for variable, old in zip([a, b, *optimizer.variables], state):
        np.testing.assert_array_equal(variable.numpy(), old)
    assert guard.skipped_steps == 1


def test_global_norm_is_of_the_finite_gradients_before_clipping_and_large_ones_are_counted():
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a, b, guard = make_setup(optimizer, large_grad_threshold=4.0)
    report = stepper(guard, optimizer, a, b, compiled=False)([3.0, 4.0], [NAN], 1.0)
    assert float(report["global_norm"]) == pytest.approx(5.0)
    assert int(report["large_grads"]) == 1
    assert guard.health()["a"] == {"none": 0, "nonfinite": 0, "large": 1, "last_norm": 5.0}
    assert np.isnan(guard.health()["b"]["last_norm"])


def test_clipping_can_be_turned_off():
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a = keras.Variable(np.array([0.0], np.float32), name="a")
    guard = GradientGuard(clip_value=None)
    guard.apply_gradients(optimizer, [tf.constant([50.0])], [a])
    np.testing.assert_allclose(a.numpy(), [-5.0])


def test_each_event_is_logged_once_per_variable(caplog):
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a, b, guard = make_setup(optimizer, large_grad_threshold=1.5)
    step = stepper(guard, optimizer, a, b, compiled=False)
    with caplog.at_level(logging.WARNING, logger="qgan.guard"):
        for _ in range(3):
            step([NAN, 1.0], [1.0], 1.0)
            step(None, [1.0], 1.0)
            step([1.0, 1.0], [1.0], NAN)
            step([3.0, 0.0], [0.0], 1.0)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 4, messages
    assert sum("'a' held NaN/Inf; that variable is left untouched" in message for message in messages) == 1
    assert sum("'a' was None" in message for message in messages) == 1
    assert sum("non-finite loss" in message for message in messages) == 1
    assert sum("'a' had a norm above 1.5" in message for message in messages) == 1


def test_rollback_after_consecutive_bad_steps_restores_the_snapshot_and_halves_the_rate():
    optimizer = keras.optimizers.SGD(learning_rate=0.5)
    a, b, guard = make_setup(optimizer, clip_value=None, max_consecutive_bad=2, snapshot_every=1)
    step = stepper(guard, optimizer, a, b, compiled=False)
    step([1.0, 1.0], [1.0], 1.0)  # healthy: snapshot of the state before it, then a = [0.5, 1.5]
    step([0.0, 2.0], [2.0], 1.0)  # healthy: snapshot (a = [0.5, 1.5], b = 2.5), then a = [0.5, 0.5], b = 1.5
    report = step([NAN, 1.0], [1.0], 1.0)  # bad 1: b moves to 1.0
    assert not bool(report["recovered"]) and guard.consecutive_bad == 1
    np.testing.assert_array_equal(b.numpy(), [1.0])
    report = step([1.0, 1.0], [1.0], NAN)  # bad 2: rollback
    assert bool(report["recovered"])
    np.testing.assert_array_equal(a.numpy(), [0.5, 1.5])
    np.testing.assert_array_equal(b.numpy(), [2.5])
    assert float(optimizer.learning_rate.numpy()) == 0.25
    assert int(optimizer.iterations.numpy()) == 1  # restored with the rest of the optimizer state
    assert (guard.recoveries, guard.consecutive_bad, guard.steps) == (1, 0, 4)


def test_large_gradients_do_not_refresh_the_snapshot():
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    a, b, guard = make_setup(optimizer, clip_value=None, max_consecutive_bad=1, snapshot_every=1)
    step = stepper(guard, optimizer, a, b, compiled=False)
    step([500.0, 0.0], [0.0], 1.0)  # large: applied, but no snapshot
    np.testing.assert_array_equal(a.numpy(), [-499.0, 2.0])
    step([NAN, 0.0], [0.0], 1.0)  # bad: rollback to the state at build
    np.testing.assert_array_equal(a.numpy(), [1.0, 2.0])
    assert guard.recoveries == 1


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf_function"])
def test_snapshots_every_third_healthy_step_across_fast_steps(compiled):
    # healthy steps between snapshots take the guard's fast path; a large step does not count
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    a, b, guard = make_setup(
        optimizer, clip_value=None, large_grad_threshold=50.0, max_consecutive_bad=1, snapshot_every=3
    )
    step = stepper(guard, optimizer, a, b, compiled)
    before = []
    for grad in (1.0, 2.0, 3.0, 4.0, 100.0, 5.0, 6.0, 7.0, 8.0):
        before.append((a.numpy().copy(), b.numpy().copy()))
        step([grad, 0.0], [grad / 10], 1.0)
    # a = 1 − (1 + 2 + … + 8) − 100; healthy steps 0, 3 and 6 (grads 1, 4 and 7) took snapshots
    np.testing.assert_array_equal(a.numpy(), [1.0 - 36.0 - 100.0, 2.0])
    assert (guard.steps, guard.skipped_steps, guard.health()["a"]["large"]) == (9, 0, 1)
    step([NAN, 0.0], [0.0], 1.0)  # bad: rollback to the state before the step with grad 7
    np.testing.assert_array_equal(a.numpy(), before[7][0])
    np.testing.assert_array_equal(b.numpy(), before[7][1])
    assert int(optimizer.iterations.numpy()) == 7
    assert float(optimizer.learning_rate.numpy()) == 0.5
    assert (guard.steps, guard.recoveries, guard.consecutive_bad) == (10, 1, 0)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf_function"])
def test_without_rollback_healthy_steps_after_a_bad_one_count_and_apply_exactly(compiled):
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    a, b, guard = make_setup(optimizer, clip_value=None, recovery="none")
    step = stepper(guard, optimizer, a, b, compiled)
    for grad, loss in ((1.0, 1.0), (2.0, 1.0), (4.0, 1.0), (8.0, NAN), (16.0, 1.0), (32.0, 1.0)):
        step([grad, 0.0], [0.0], loss)
        if loss != loss:
            assert (guard.steps, guard.skipped_steps, guard.consecutive_bad) == (4, 1, 1)
    np.testing.assert_array_equal(a.numpy(), [1.0 - 1.0 - 2.0 - 4.0 - 16.0 - 32.0, 2.0])
    assert (guard.steps, guard.skipped_steps, guard.consecutive_bad, guard.recoveries) == (6, 1, 0, 0)
    no_snapshot = {"counters", "variable_counts", "last_squared_norms", "stop_requested", "steps_to_snapshot"}
    assert guard.state_variables().keys() == no_snapshot


def test_the_step_branch_runs_as_a_function_not_lowered_to_switch_merge():
    # lowered, every op of the rarely taken branch would pass a dead tensor on each step
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a, b, guard = make_setup(optimizer)
    step = tf.function(lambda ga, gb: guard.apply_gradients(optimizer, [ga, gb], [a, b], loss=1.0))
    graph = step.get_concrete_function(tf.zeros(2), tf.zeros(1)).graph
    branches = [op for op in graph.get_operations() if op.type in ("If", "StatelessIf")]
    assert len(branches) == 1
    assert branches[0].get_attr("_lower_using_switch_merge") is False


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf_function"])
def test_stop_outside_fit_raises(compiled):
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a, b, guard = make_setup(optimizer, recovery="stop", max_consecutive_bad=2)
    step = stepper(guard, optimizer, a, b, compiled)
    step([1.0, 1.0], [1.0], NAN)
    error = GuardStop if not compiled else tf.errors.InvalidArgumentError
    with pytest.raises(error, match="2 bad steps in a row"):
        step([1.0, 1.0], [1.0], NAN)
    assert guard.stop_requested


def test_mixed_precision_overflow_is_skipped():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros")
        layer.build((None, 2))
    finally:
        keras.config.set_dtype_policy(previous)
    optimizer = keras.optimizers.SGD(learning_rate=0.01)
    guard = GradientGuard(clip_value=None)
    guard.build(optimizer, layer.trainable_variables)

    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(tf.constant(x, tf.float32))))
        assert loss.dtype == tf.float16
        grads = tape.gradient(loss, layer.trainable_variables)
        return guard.apply_gradients(optimizer, grads, layer.trainable_variables, loss=loss)

    report = step([[60000.0, 60000.0]])  # float16 overflows to Inf
    assert not bool(report["loss_finite"]) and not bool(report["applied"])
    np.testing.assert_array_equal(layer.kernel.numpy(), [[1.0], [1.0]])
    report = step([[1.0, 0.5]])  # loss (1.5)², gradient of the kernel 2·1.5·x
    assert bool(report["applied"])
    np.testing.assert_allclose(layer.kernel.numpy(), [[1.0 - 0.01 * 3.0], [1.0 - 0.01 * 1.5]], rtol=1e-3)
    assert layer.kernel.dtype == "float32"


def test_bad_arguments_are_clear_errors():
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a, b, guard = make_setup(optimizer)
    stranger = keras.Variable(np.zeros(1, np.float32), name="stranger")
    with pytest.raises(ValueError, match="'stranger' was not given"):
        guard.apply_gradients(optimizer, [tf.zeros(1)], [stranger])
    with pytest.raises(ValueError, match="clip_value=-1.0 is not allowed"):
        GradientGuard(clip_value=-1.0)
    with pytest.raises(
        ValueError, match="nonfinite='ignore' is not allowed; use one of filter, zero, skip, raise"
    ):
        GradientGuard(nonfinite="ignore")
    with pytest.raises(ValueError, match="recovery='retry' is not allowed"):
        GradientGuard(recovery="retry")
    with pytest.raises(ValueError, match="max_consecutive_bad=0 is not allowed"):
        GradientGuard(max_consecutive_bad=0)
    with pytest.raises(ValueError, match="snapshot_every=2147483648 is not allowed; use an integer from 1"):
        GradientGuard(snapshot_every=2**31)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    with pytest.raises(ValueError, match="needs a settable learning rate"):
        GradientGuard().build(keras.optimizers.SGD(learning_rate=schedule), [stranger])


SHAPES = [(2,), (3, 2), (1,), (4,)]
gradient_lists = st.lists(
    st.tuples(
        st.sampled_from(["finite", "nan", "inf", "-inf", "none"]),
        st.integers(0, 5),  # position of the bad entry (modulo the size)
        st.floats(-1e3, 1e3, allow_nan=False, width=32),
    ),
    min_size=len(SHAPES),
    max_size=len(SHAPES),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from(["filter", "zero", "skip"]),
    optimizer_name=st.sampled_from(["sgd_momentum", "adam", "rmsprop"]),
    steps=st.lists(gradient_lists, min_size=1, max_size=4),
    loss_finite=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_no_nan_or_inf_ever_reaches_a_variable_or_the_optimizer_state(
    policy, optimizer_name, steps, loss_finite
):
    optimizer = {
        "sgd_momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
        "adam": lambda: keras.optimizers.Adam(0.1),
        "rmsprop": lambda: keras.optimizers.RMSprop(0.1),
    }[optimizer_name]()
    variables = [
        keras.Variable(np.ones(shape, np.float32), name=f"v{index}") for index, shape in enumerate(SHAPES)
    ]
    guard = GradientGuard(nonfinite=policy, clip_value=None, max_consecutive_bad=2, snapshot_every=1)
    guard.build(optimizer, variables)
    special = {"nan": NAN, "inf": INF, "-inf": -INF}
    for number, entries in enumerate(steps):
        grads = []
        for (kind, position, value), variable in zip(entries, variables):
            if kind == "none":
                grads.append(None)
                continue
            gradient = np.full(variable.shape, value, np.float32).reshape(-1)
            if kind in special:
                gradient[position % gradient.size] = special[kind]
            grads.append(tf.constant(gradient.reshape(variable.shape)))
        loss = tf.constant(1.0 if loss_finite[number] else NAN)
        guard.apply_gradients(optimizer, grads, variables, loss=loss)
        for item in [*variables, *optimizer.variables]:
            assert np.all(np.isfinite(item.numpy())), (item.name, number)
