"""Tests of qgan.models.critic: the critic network and the gradient penalty."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from qgan.models.critic import GRADIENT_NORM_EPSILON, build_critic, gradient_penalty


def linear_critic(weights):
    w = tf.constant(weights, tf.float32)
    return lambda x, training=False: tf.reduce_sum(x * w, axis=1, keepdims=True)


@pytest.mark.parametrize("weights", [[3.0, 4.0], [0.6, 0.8], [0.1, -0.2], [0.0, 0.0]])
def test_penalty_of_a_linear_critic_is_norm_minus_one_squared(weights):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(16, 2)).astype(np.float32)
    fake = rng.normal(size=(16, 2)).astype(np.float32)
    norm = np.sqrt(np.sum(np.square(weights)) + GRADIENT_NORM_EPSILON)
    penalty = gradient_penalty(linear_critic(weights), real, fake, seed=1)
    assert float(penalty) == pytest.approx((norm - 1.0) ** 2, rel=1e-6, abs=1e-7)


def test_one_sided_penalty_ignores_norms_below_target():
    real = np.ones((4, 2), np.float32)
    fake = np.zeros((4, 2), np.float32)
    assert float(gradient_penalty(linear_critic([0.3, 0.4]), real, fake, one_sided=True)) == 0.0
    assert float(gradient_penalty(linear_critic([3.0, 4.0]), real, fake, one_sided=True)) == pytest.approx(
        16.0
    )
    assert float(gradient_penalty(linear_critic([3.0, 4.0]), real, fake, target=2.0)) == pytest.approx(9.0)


def test_penalty_interpolates_between_real_and_fake():
    # critic f(x) = x0²: its gradient norm at x̂ is 2|x̂0|, so the penalty reveals where x̂ lies.
    seen = []

    def square_critic(x, training=False):
        seen.append(x)
        return tf.square(x[:, :1])

    real = np.full((2000, 2), 1.0, np.float32)
    fake = np.full((2000, 2), 0.0, np.float32)
    gradient_penalty(square_critic, real, fake, seed=3)
    alpha = seen[0].numpy()[:, 0]
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert alpha.mean() == pytest.approx(0.5, abs=0.03)
    assert alpha.std() == pytest.approx(np.sqrt(1 / 12), abs=0.02)


def test_penalty_gradient_is_finite_where_the_critic_gradient_vanishes():
    critic = build_critic((8,), seed=0)
    for variable in critic.trainable_variables:
        variable.assign(tf.zeros_like(variable))
    real = np.ones((4, 2), np.float32)
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(critic, real, real)
    grads = tape.gradient(penalty, critic.trainable_variables)
    assert float(penalty) == pytest.approx(1.0, abs=1e-4)
    assert all(np.all(np.isfinite(grad.numpy())) for grad in grads if grad is not None)


def test_penalty_gradient_matches_central_finite_differences():
    critic = build_critic((8, 8), seed=4)
    rng = np.random.default_rng(2)
    real = rng.normal(size=(8, 2)).astype(np.float32)
    fake = rng.normal(size=(8, 2)).astype(np.float32)
    variable = critic.trainable_variables[-2]  # the output kernel

    def penalty_value():
        return float(gradient_penalty(critic, real, fake, seed=keras.random.SeedGenerator(7)))

    with tf.GradientTape() as tape:
        penalty = gradient_penalty(critic, real, fake, seed=keras.random.SeedGenerator(7))
    analytic = tape.gradient(penalty, variable).numpy()
    original = variable.numpy().astype(np.float64)
    step = 1e-3
    numeric = np.zeros_like(original)
    for index in np.ndindex(original.shape):
        shifted = original.copy()
        shifted[index] += step
        variable.assign(shifted)
        up = penalty_value()
        shifted[index] -= 2 * step
        variable.assign(shifted)
        down = penalty_value()
        numeric[index] = (up - down) / (2 * step)
    variable.assign(original)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-2, atol=2e-3)


def test_critic_maps_points_to_scores():
    critic = build_critic((64, 64), seed=0)
    assert critic(np.zeros((5, 2), np.float32)).shape == (5, 1)
    assert [layer.units for layer in critic.layers if isinstance(layer, keras.layers.Dense)] == [
        64,
        64,
        1,
    ]
