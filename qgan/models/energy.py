"""The energy distance between a generator's mixture and real samples: a loss that sees each mode's width."""

from __future__ import annotations

import tensorflow as tf

# sqrt(d² + ε): the distance of two equal points then has gradient 0, not NaN
DISTANCE_EPSILON = 1e-12


def _distances(first, second):
    """(n, m) Euclidean distances, from the differences (not |a|² + |b|² − 2a·b, which float32 rounds)."""
    difference = first[:, None, :] - second[None, :, :]
    return tf.sqrt(tf.reduce_sum(tf.square(difference), axis=-1) + DISTANCE_EPSILON)


def mixture_energy_distance(coordinates, weights, real):
    """The squared energy distance 2E|X−Y| − E|X−X'| − E|Y−Y'| of a mixture generator's batch.

    The fake distribution is that of the batch: a latent row b, each equally likely, then outcome
    n with weight w_bn, at coordinates x_bn; the expectations are exact sums over outcomes, so the
    outcome probabilities get their gradient too. E|X−X'| pairs the first half of the rows with
    the second (independent draws, at a quarter of the all-pairs cost), and E|Y−Y'| the real
    rows' halves likewise: every term is unbiased. Unlike a critic with a bounded gradient, its
    gradient at a cluster narrower than the target's does not vanish: fake points of one mode
    repel each other and are drawn to that mode's real points.

    Args:
        coordinates: (batch, outcomes, d) every outcome's coordinates, batch ≥ 2.
        weights: (batch, outcomes) outcome weights, each row summing to 1.
        real: (count, d) real samples, count ≥ 2.

    Returns:
        A scalar tensor, ≥ 0 up to the batches' noise.
    """
    cross, fake, real_pairs = _pair_means(coordinates, weights, real, _distances)
    return 2.0 * cross - fake - real_pairs


def _pair_means(coordinates, weights, real, pairwise):
    """E[k(fake, real)], E[k(fake, fake')] and E[k(real, real')] of a mixture's batch for a kernel k.

    The fake pairs join the batch's first half with its second (no sample meets itself), each
    outcome weighted by its weight; the real pairs join the real batch's halves likewise.
    """
    coordinates = tf.convert_to_tensor(coordinates)
    weights = tf.cast(weights, coordinates.dtype)
    real = tf.cast(real, coordinates.dtype)
    dimension = coordinates.shape[-1]
    half = tf.shape(coordinates)[0] // 2

    def flat(rows_coordinates, rows_weights):
        count = tf.cast(tf.shape(rows_weights)[0], rows_weights.dtype)
        return tf.reshape(rows_coordinates, (-1, dimension)), tf.reshape(rows_weights, [-1]) / count

    points, mass = flat(coordinates, weights)
    cross = tf.reduce_sum(mass * tf.reduce_mean(pairwise(points, real), axis=1))
    first, first_mass = flat(coordinates[:half], weights[:half])
    second, second_mass = flat(coordinates[half : 2 * half], weights[half : 2 * half])
    fake = tf.reduce_sum(first_mass[:, None] * second_mass[None, :] * pairwise(first, second))
    real_half = tf.shape(real)[0] // 2
    real_pairs = tf.reduce_mean(pairwise(real[:real_half], real[real_half : 2 * real_half]))
    return cross, fake, real_pairs


def energy_distance(fake, real):
    """The squared energy distance of plain samples (a generator without outcomes), each row of weight 1."""
    fake = tf.convert_to_tensor(fake)
    ones = tf.ones(tf.shape(fake)[:1], fake.dtype)
    return mixture_energy_distance(fake[:, None, :], ones[:, None], real)


def _laplace_kernel(first, second, scales):
    """Σ_h exp(−|a − b|/h) over the bandwidths h, for every pair: (n, m)."""
    distance = _distances(first, second)
    return tf.add_n([tf.exp(-distance / scale) for scale in scales])


def mixture_local_mmd(coordinates, weights, real, scales):
    """The squared MMD of a mixture generator's batch under a sum of Laplace kernels exp(−|x − y|/h).

    With bandwidths h near the data's local scale (see local_scale) the kernel sees only pairs of
    points within a few h: each mode is compared with its own real points, and a mismatch of one
    mode's mass pulls no other mode off its centre, as the energy distance's |x − y| does. The
    kernel's cusp at 0 makes coincident fake points repel (a point-like cluster's gradient does
    not vanish). The estimator pairs rows' halves, as mixture_energy_distance does.

    Args:
        coordinates: (batch, outcomes, d) every outcome's coordinates, batch ≥ 2.
        weights: (batch, outcomes) outcome weights, each row summing to 1.
        real: (count, d) real samples, count ≥ 2.
        scales: the bandwidths h (Python floats).

    Returns:
        A scalar tensor, ≥ 0 up to the batches' noise.
    """
    cross, fake, real_pairs = _pair_means(
        coordinates, weights, real, lambda first, second: _laplace_kernel(first, second, scales)
    )
    return fake + real_pairs - 2.0 * cross


def local_scale(points, neighbour: int = 10) -> float:
    """The data's local scale: the median distance of a point to its `neighbour`-th nearest other point.

    Args:
        points: (N, d) real points (a few thousand).
        neighbour: which neighbour.

    Returns:
        The median distance (a Python float), at least 1e-6.
    """
    import numpy as np

    points = np.asarray(points, np.float64)
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    distances.sort(axis=1)
    return max(float(np.median(distances[:, min(neighbour, len(points) - 1)])), 1e-6)
