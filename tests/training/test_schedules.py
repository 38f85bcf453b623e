"""Tests of qgan.training.schedules: decay factors in closed form, the per-step callback with back-off."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from qgan.guard import GradientGuard
from qgan.training.schedules import LearningRateDecay, decay_factor


def test_decay_factors_in_closed_form():
    assert [decay_factor("constant", step, 10, 0.1) for step in (0, 5, 10)] == [1.0, 1.0, 1.0]
    assert [decay_factor("linear", step, 10, 0.1) for step in (0, 5, 10)] == pytest.approx([1.0, 0.55, 0.1])
    assert decay_factor("cosine", 0, 10, 0.2) == pytest.approx(1.0)
    assert decay_factor("cosine", 5, 10, 0.2) == pytest.approx(0.6)
    assert decay_factor("cosine", 10, 10, 0.2) == pytest.approx(0.2)
    expected = 0.2 + 0.8 * 0.5 * (1 + math.cos(0.3 * math.pi))
    assert decay_factor("cosine", 3, 10, 0.2) == pytest.approx(expected)
    with pytest.raises(ValueError, match="schedule 'step' is unknown"):
        decay_factor("step", 1, 10, 0.1)


def rollback_guard(optimizer, variable):
    """A real guard that rolls back (halving the rate) after one bad step."""
    guard = GradientGuard(max_consecutive_bad=1, recovery="rollback", lr_backoff=0.5, name="guard")
    guard.build(optimizer, [variable])
    return guard


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_callback_follows_the_schedule_and_keeps_a_guards_halving(schedule):
    total = 8
    variables = [tf.Variable([1.0, 2.0]), tf.Variable([3.0])]
    optimizers = [keras.optimizers.Adam(1e-3), keras.optimizers.SGD(0.5)]
    guards = [rollback_guard(optimizer, variable) for optimizer, variable in zip(optimizers, variables)]
    initial = [1e-3, 0.5]
    step = tf.Variable(0, dtype=tf.int64)
    callback = LearningRateDecay(zip(optimizers, initial, guards), step, total, schedule, 0.1)
    backoff = 1.0
    for completed in range(total):
        callback.on_train_batch_begin(completed)
        for optimizer, rate in zip(optimizers, initial):
            expected = rate * backoff * decay_factor(schedule, completed, total, 0.1)
            np.testing.assert_allclose(float(optimizer.learning_rate.numpy()), expected, rtol=1e-5)
        if completed == 3:  # a NaN gradient makes both guards roll back and halve their rates
            for guard, optimizer, variable in zip(guards, optimizers, variables):
                nan = tf.fill(variable.shape, float("nan"))
                guard.apply_gradients(optimizer, [nan], [variable], loss=tf.constant(1.0))
                assert guard.recoveries == 1 and guard.learning_rate_factor == 0.5
            backoff = 0.5
        step.assign_add(1)
    callback.on_train_batch_begin(total)
    np.testing.assert_allclose(float(optimizers[1].learning_rate.numpy()), 0.5 * 0.5 * 0.1, rtol=1e-5)


def test_an_extended_run_follows_the_new_schedule_to_its_final_fraction():
    optimizer = keras.optimizers.SGD(0.2)
    step = tf.Variable(0, dtype=tf.int64)
    first = LearningRateDecay([(optimizer, 0.2, None)], step, 10, "cosine", 0.05)
    for completed in range(11):
        step.assign(completed)
        first.on_train_batch_begin(completed)
    np.testing.assert_allclose(float(optimizer.learning_rate.numpy()), 0.2 * 0.05, rtol=1e-5)
    # the run is resumed with --steps 20: the rate is the new schedule's, not a decay of the decayed rate
    extended = LearningRateDecay([(optimizer, 0.2, None)], step, 20, "cosine", 0.05)
    extended.on_train_batch_begin(10)
    np.testing.assert_allclose(float(optimizer.learning_rate.numpy()), 0.2 * (0.05 + 0.95 * 0.5), rtol=1e-5)
    step.assign(20)
    extended.on_train_batch_begin(20)
    np.testing.assert_allclose(float(optimizer.learning_rate.numpy()), 0.2 * 0.05, rtol=1e-5)


def test_constant_schedule_keeps_the_base_rate_times_the_backoff():
    variable = tf.Variable([1.0])
    optimizer = keras.optimizers.Adam(3e-4)
    guard = rollback_guard(optimizer, variable)
    step = tf.Variable(5, dtype=tf.int64)
    callback = LearningRateDecay([(optimizer, 3e-4, guard)], step, 10, "constant", 0.1)
    callback.on_train_batch_begin(5)
    assert float(optimizer.learning_rate.numpy()) == np.float32(3e-4)
    guard.apply_gradients(optimizer, [tf.constant([float("nan")])], [variable], loss=tf.constant(1.0))
    callback.on_train_batch_begin(6)
    assert float(optimizer.learning_rate.numpy()) == np.float32(3e-4 * 0.5)
