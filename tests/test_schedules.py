"""Tests of qgan.schedules: decay factors in closed form, and the per-step callback composed with back-off."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from qgan.schedules import LearningRateDecay, decay_factor


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


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_callback_follows_the_schedule_and_keeps_a_halving(schedule):
    total = 8
    optimizers = [keras.optimizers.Adam(1e-3), keras.optimizers.SGD(0.5)]
    initial = [1e-3, 0.5]
    step = tf.Variable(0, dtype=tf.int64)
    callback = LearningRateDecay(optimizers, step, total, schedule, 0.1)
    backoff = 1.0
    for completed in range(total):
        callback.on_train_batch_begin(completed)
        for optimizer, rate in zip(optimizers, initial):
            expected = rate * backoff * decay_factor(schedule, completed, total, 0.1)
            np.testing.assert_allclose(float(optimizer.learning_rate.numpy()), expected, rtol=1e-5)
        if completed == 3:  # what a guard's rollback does
            optimizers[0].learning_rate.assign(optimizers[0].learning_rate * 0.5)
            optimizers[1].learning_rate.assign(optimizers[1].learning_rate * 0.5)
            backoff = 0.5
        step.assign_add(1)


def test_constant_schedule_leaves_the_rate_alone():
    optimizer = keras.optimizers.Adam(3e-4)
    step = tf.Variable(5, dtype=tf.int64)
    LearningRateDecay([optimizer], step, 10, "constant", 0.1).on_train_batch_begin(5)
    assert float(optimizer.learning_rate.numpy()) == np.float32(3e-4)
