"""Tests of qgan.guard.GradientGuard on exact scripted sequences of finite and non-finite steps."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from qgan.guard import GradientGuard

NAN = float("nan")
INF = float("inf")
f32 = np.float32


def make_setup(optimizer):
    a = keras.Variable(np.array([1.0, 2.0], np.float32), name="a")
    b = keras.Variable(np.array([3.0], np.float32), name="b")
    guard = GradientGuard(clip_value=1.0, name="test_guard")
    guard.build(optimizer, [a, b])
    return a, b, guard


def stepper(guard, optimizer, a, b, compiled):
    def step(grad_a, grad_b, loss):
        grads = [
            None if grad_a is None else tf.constant(grad_a, tf.float32),
            tf.constant(grad_b, tf.float32),
        ]
        return guard.apply_gradients(optimizer, grads, [a, b], loss=tf.constant(loss, tf.float32))

    if not compiled:
        return step
    compiled_with_a = tf.function(
        lambda ga, gb, loss: guard.apply_gradients(optimizer, [ga, gb], [a, b], loss=loss)
    )
    compiled_without_a = tf.function(
        lambda gb, loss: guard.apply_gradients(optimizer, [None, gb], [a, b], loss=loss)
    )

    def compiled_step(grad_a, grad_b, loss):
        if grad_a is None:
            return compiled_without_a(tf.constant(grad_b, tf.float32), tf.constant(loss, tf.float32))
        return compiled_with_a(
            tf.constant(grad_a, tf.float32),
            tf.constant(grad_b, tf.float32),
            tf.constant(loss, tf.float32),
        )

    return compiled_step


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf_function"])
def test_scripted_sequence_with_sgd(compiled):
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a, b, guard = make_setup(optimizer)
    step = stepper(guard, optimizer, a, b, compiled)
    lr = f32(0.1)
    # (grad a, grad b, loss) → expected a, b, iterations, skipped, report fields
    script = [
        # finite: a's second entry is clipped from 5 to 1
        (
            [0.5, 5.0],
            [1.0],
            1.0,
            [f32(1) - lr * f32(0.5), f32(2) - lr * f32(1)],
            [f32(3) - lr * f32(1)],
            1,
            0,
            dict(applied=True, loss_finite=True, nonfinite_grads=0, none_grads=0),
        ),
        # NaN loss: nothing moves, the optimizer is not called
        (
            [1.0, 1.0],
            [1.0],
            NAN,
            None,
            None,
            1,
            1,
            dict(applied=False, loss_finite=False, nonfinite_grads=0, none_grads=0),
        ),
        # NaN in a's gradient: a stays, b moves (b's gradient 2 is clipped to 1)
        (
            [NAN, 1.0],
            [2.0],
            1.0,
            None,
            "b-",
            2,
            1,
            dict(applied=True, loss_finite=True, nonfinite_grads=1, none_grads=0),
        ),
        # Inf in b's gradient: b stays, a moves
        (
            [1.0, -1.0],
            [INF],
            1.0,
            "a",
            None,
            3,
            1,
            dict(applied=True, loss_finite=True, nonfinite_grads=1, none_grads=0),
        ),
        # None for a: dropped, b moves
        (
            None,
            [1.0],
            1.0,
            None,
            "b-",
            4,
            1,
            dict(applied=True, loss_finite=True, nonfinite_grads=0, none_grads=1),
        ),
        # finite again
        (
            [1.0, 1.0],
            [-1.0],
            1.0,
            "a1",
            "b+",
            5,
            1,
            dict(applied=True, loss_finite=True, nonfinite_grads=0, none_grads=0),
        ),
    ]
    expected_a = np.array([1.0, 2.0], np.float32)
    expected_b = np.array([3.0], np.float32)
    for number, (grad_a, grad_b, loss, new_a, new_b, iterations, skipped, fields) in enumerate(script, 1):
        report = step(grad_a, grad_b, loss)
        if isinstance(new_a, list):
            expected_a = np.array(new_a, np.float32)
        elif new_a == "a":
            expected_a = expected_a - lr * np.array([1.0, -1.0], np.float32)
        elif new_a == "a1":
            expected_a = expected_a - lr * np.array([1.0, 1.0], np.float32)
        if isinstance(new_b, list):
            expected_b = np.array(new_b, np.float32)
        elif new_b == "b-":
            expected_b = expected_b - lr * f32(1.0)
        elif new_b == "b+":
            expected_b = expected_b + lr * f32(1.0)
        np.testing.assert_array_equal(a.numpy(), expected_a, err_msg=f"a after step {number}")
        np.testing.assert_array_equal(b.numpy(), expected_b, err_msg=f"b after step {number}")
        assert int(optimizer.iterations.numpy()) == iterations, number
        assert guard.steps == number
        assert guard.skipped_steps == skipped, number
        for key, value in fields.items():
            assert report[key].numpy() == value, (number, key)
    assert guard.nonfinite_loss_steps == 1
    assert guard.counts() == {"a": {"nonfinite": 1, "none": 1}, "b": {"nonfinite": 1, "none": 0}}
    totals = {key: int(value.numpy()) for key, value in guard.totals().items()}
    assert totals == {
        "skipped_steps": 1,
        "nonfinite_loss_steps": 1,
        "nonfinite_grads": 2,
        "none_grads": 1,
    }


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


def test_all_gradients_bad_leaves_the_optimizer_untouched():
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    a, b, guard = make_setup(optimizer)
    step = stepper(guard, optimizer, a, b, compiled=False)
    step([0.5, -0.5], [0.25], 1.0)
    state = [variable.numpy().copy() for variable in optimizer.variables]
    report = step([NAN, 0.0], [INF], 1.0)
    assert not bool(report["applied"])
    for variable, old in zip(optimizer.variables, state):
        np.testing.assert_array_equal(variable.numpy(), old)
    assert guard.skipped_steps == 1


def test_global_norm_is_of_the_finite_gradients_before_clipping():
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a, b, guard = make_setup(optimizer)
    report = stepper(guard, optimizer, a, b, compiled=False)([3.0, 4.0], [NAN], 1.0)
    assert float(report["global_norm"]) == pytest.approx(5.0)


def test_clipping_can_be_turned_off():
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a = keras.Variable(np.array([0.0], np.float32), name="a")
    guard = GradientGuard(clip_value=None)
    guard.apply_gradients(optimizer, [tf.constant([50.0])], [a])
    np.testing.assert_allclose(a.numpy(), [-5.0])


def test_each_event_is_logged_once_per_variable(caplog):
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a, b, guard = make_setup(optimizer)
    step = stepper(guard, optimizer, a, b, compiled=False)
    with caplog.at_level(logging.WARNING, logger="qgan.guard"):
        for _ in range(3):
            step([NAN, 1.0], [1.0], 1.0)
            step(None, [1.0], 1.0)
            step([1.0, 1.0], [1.0], NAN)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert sum("'a' held NaN/Inf" in message for message in messages) == 1
    assert sum("'a' was None" in message for message in messages) == 1
    assert sum("non-finite loss" in message for message in messages) == 1


def test_unknown_variable_and_bad_clip_value_are_clear_errors():
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    a, b, guard = make_setup(optimizer)
    stranger = keras.Variable(np.zeros(1, np.float32), name="stranger")
    with pytest.raises(ValueError, match="'stranger' was not given"):
        guard.apply_gradients(optimizer, [tf.zeros(1)], [stranger])
    with pytest.raises(ValueError, match="clip_value must be positive"):
        GradientGuard(clip_value=-1.0)
