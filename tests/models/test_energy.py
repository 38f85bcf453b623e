"""The energy-distance and local-MMD losses against brute-force sums, closed forms and finite differences."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from qgan.models.energy import energy_distance, local_scale, mixture_energy_distance, mixture_local_mmd


def brute_force(coordinates, weights, real):
    """The estimator written out: all fake points against all real ones; halves against halves."""
    batch, outcomes, _ = coordinates.shape
    half = batch // 2
    cross = sum(
        weights[b, n] / batch * np.mean(np.linalg.norm(coordinates[b, n] - real, axis=1))
        for b, n in itertools.product(range(batch), range(outcomes))
    )
    pairs = sum(
        weights[b, n] * weights[c, m] / half**2 * np.linalg.norm(coordinates[b, n] - coordinates[c, m])
        for b, c in itertools.product(range(half), range(half, 2 * half))
        for n, m in itertools.product(range(outcomes), repeat=2)
    )
    real_half = len(real) // 2
    real_pairs = np.mean(
        [
            np.linalg.norm(real[i] - real[real_half + j])
            for i, j in itertools.product(range(real_half), repeat=2)
        ]
    )
    return 2 * cross - pairs - real_pairs


def random_mixture(seed=0, batch=6, outcomes=3, count=8):
    rng = np.random.default_rng(seed)
    coordinates = rng.normal(size=(batch, outcomes, 2))
    weights = rng.uniform(0.1, 1.0, size=(batch, outcomes))
    weights /= weights.sum(axis=1, keepdims=True)
    return coordinates, weights, rng.normal(size=(count, 2))


def test_it_is_the_weighted_estimator_over_independent_halves():
    coordinates, weights, real = random_mixture()
    value = mixture_energy_distance(tf.constant(coordinates), tf.constant(weights), tf.constant(real))
    assert float(value) == pytest.approx(brute_force(coordinates, weights, real), rel=1e-9)


def test_two_point_masses_at_distance_d_are_two_d_apart():
    fake = np.zeros((6, 2))
    real = np.tile([[0.3, 0.4]], (5, 1))
    assert float(energy_distance(tf.constant(fake), tf.constant(real))) == pytest.approx(1.0, abs=1e-5)


def test_samples_of_one_distribution_are_near_zero_and_a_narrower_one_is_not():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(2000, 2))
    same = float(energy_distance(tf.constant(rng.normal(size=(2000, 2))), tf.constant(real)))
    narrow = float(energy_distance(tf.constant(0.2 * rng.normal(size=(2000, 2))), tf.constant(real)))
    assert abs(same) < 0.01 and narrow > 0.3


def test_gradients_match_central_finite_differences():
    coordinates, weights, real = random_mixture(seed=2)
    logits = np.log(weights)

    def value(coordinates, logits):
        return mixture_energy_distance(coordinates, tf.nn.softmax(logits, axis=1), tf.constant(real))

    variables = [tf.Variable(coordinates), tf.Variable(logits)]
    with tf.GradientTape() as tape:
        loss = value(*variables)
    gradients = tape.gradient(loss, variables)
    step = 1e-6
    for variable, gradient in zip(variables, gradients):
        base = variable.numpy()
        for index in np.ndindex(base.shape):
            shifted = [v.numpy() for v in variables]
            which = 0 if variable is variables[0] else 1
            shifted[which][index] = base[index] + step
            up = float(value(*map(tf.constant, shifted)))
            shifted[which][index] = base[index] - step
            down = float(value(*map(tf.constant, shifted)))
            assert gradient.numpy()[index] == pytest.approx((up - down) / (2 * step), abs=1e-6)


def test_a_point_mass_has_a_finite_gradient_that_spreads_it():
    real = np.random.default_rng(3).normal(0.0, 0.1, size=(64, 2))
    fake = tf.Variable(np.full((32, 2), 1e-3) + np.random.default_rng(4).normal(0, 1e-4, size=(32, 2)))
    with tf.GradientTape() as tape:
        loss = energy_distance(fake, tf.constant(real))
    gradient = tape.gradient(loss, fake).numpy()
    assert np.all(np.isfinite(gradient))
    # a descent step moves the points apart: their spread grows
    spread = np.std(fake.numpy(), axis=0).sum()
    assert np.std(fake.numpy() - 0.01 * gradient * 32, axis=0).sum() > 2 * spread


def laplace(first, second, scales):
    distance = np.linalg.norm(first - second)
    return sum(np.exp(-distance / scale) for scale in scales)


def brute_force_mmd(coordinates, weights, real, scales):
    batch, outcomes, _ = coordinates.shape
    half, real_half = batch // 2, len(real) // 2
    cross = sum(
        weights[b, n] / batch * np.mean([laplace(coordinates[b, n], y, scales) for y in real])
        for b, n in itertools.product(range(batch), range(outcomes))
    )
    pairs = sum(
        weights[b, n] * weights[c, m] / half**2 * laplace(coordinates[b, n], coordinates[c, m], scales)
        for b, c in itertools.product(range(half), range(half, 2 * half))
        for n, m in itertools.product(range(outcomes), repeat=2)
    )
    real_pairs = np.mean(
        [
            laplace(real[i], real[real_half + j], scales)
            for i, j in itertools.product(range(real_half), repeat=2)
        ]
    )
    return pairs + real_pairs - 2 * cross


def test_the_local_mmd_is_its_estimator_written_out():
    coordinates, weights, real = random_mixture(seed=5)
    scales = (0.3, 1.2)
    value = mixture_local_mmd(tf.constant(coordinates), tf.constant(weights), tf.constant(real), scales)
    assert float(value) == pytest.approx(brute_force_mmd(coordinates, weights, real, scales), rel=1e-9)


def test_the_local_mmd_does_not_couple_modes_farther_apart_than_its_bandwidths():
    rng = np.random.default_rng(7)
    near, far = rng.normal(0, 0.1, (64, 2)), rng.normal(10, 0.1, (64, 2))
    real = tf.constant(np.concatenate([near, far]))
    # each mode's fake points are its real points themselves; the generator weighs the modes 0.9 : 0.1
    fake = tf.Variable(np.stack([near, far], axis=1))
    weights = tf.constant(np.tile([[0.9, 0.1]], (64, 1)))

    def mean_pull(loss_of):
        with tf.GradientTape() as tape:
            loss = loss_of(fake, weights, real)
        return tape.gradient(loss, fake).numpy()[:, 0].sum(axis=0)

    # pairs within one mode cancel in its mean's gradient (the kernels depend on x − y alone), so what
    # remains is the pull of the other mode: none for the local MMD, the mass mismatch's for |x − y|
    local = mean_pull(lambda *args: mixture_local_mmd(*args, (0.05, 0.1)))
    energy = mean_pull(mixture_energy_distance)
    np.testing.assert_allclose(local, 0.0, atol=1e-12)
    assert np.linalg.norm(energy) > 0.1


def test_local_mmd_gradients_match_central_finite_differences():
    coordinates, weights, real = random_mixture(seed=8)
    scales = (0.5, 2.0)
    variable = tf.Variable(coordinates)
    with tf.GradientTape() as tape:
        loss = mixture_local_mmd(variable, tf.constant(weights), tf.constant(real), scales)
    gradient = tape.gradient(loss, variable).numpy()
    step = 1e-6
    for index in np.ndindex(coordinates.shape):
        shifted = coordinates.copy()
        shifted[index] += step
        up = brute_force_mmd(shifted, weights, real, scales)
        shifted[index] -= 2 * step
        down = brute_force_mmd(shifted, weights, real, scales)
        assert gradient[index] == pytest.approx((up - down) / (2 * step), abs=1e-6)


def test_the_local_scale_of_a_gaussian_cloud_is_its_tenth_neighbour_radius():
    points = np.random.default_rng(9).normal(0, 0.02, size=(2000, 2))
    # the 10th of 1,999 neighbours: a disc of probability 10/1999 near the centre, radius σ·√(2·10/1999)
    assert local_scale(points) == pytest.approx(0.02 * np.sqrt(-2 * np.log(1 - 10 / 1999)), rel=0.5)
    assert local_scale(np.zeros((50, 2))) == 1e-6
