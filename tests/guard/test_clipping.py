"""qgan.guard.clip_gradients: bounds reached to 6 places, order value → norm → global, idempotent."""

import numpy as np
import pytest
import tensorflow as tf

from qgan.guard import clip_gradients


def random_grads(seed, scale=10.0):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.normal(0, scale, shape), tf.float32) for shape in [(3, 4), (5,), (2, 2, 2)]]


def norm(tensor):
    return float(np.linalg.norm(np.asarray(tensor, np.float64)))


@pytest.mark.parametrize("seed", range(5))
def test_each_bound_is_reached_to_six_places(seed):
    grads = random_grads(seed)
    by_value = clip_gradients(grads, clip_value=0.5)
    assert max(float(np.max(np.abs(g))) for g in by_value) == 0.5
    by_norm = clip_gradients(grads, clip_norm=2.0)
    for clipped, original in zip(by_norm, grads):
        assert norm(clipped) == pytest.approx(2.0, abs=1e-6)
        np.testing.assert_allclose(clipped / norm(clipped), original / norm(original), atol=1e-6)
    by_global = clip_gradients(grads, global_clip_norm=3.0)
    joint = np.sqrt(sum(norm(g) ** 2 for g in by_global))
    assert joint == pytest.approx(3.0, abs=1e-6)


@pytest.mark.parametrize(
    "options",
    [
        dict(clip_value=0.5),
        dict(clip_norm=2.0),
        dict(global_clip_norm=3.0),
        dict(clip_value=4.0, clip_norm=6.0, global_clip_norm=7.0),
    ],
)
def test_clipping_twice_changes_nothing(options):
    for seed in range(5):
        once = clip_gradients(random_grads(seed), **options)
        twice = clip_gradients(once, **options)
        for first, second in zip(once, twice):
            np.testing.assert_array_equal(second.numpy(), first.numpy())


def test_gradients_within_the_bounds_are_untouched():
    grads = random_grads(0, scale=0.01)
    for clipped, original in zip(clip_gradients(grads, 1.0, 1.0, 1.0), grads):
        np.testing.assert_array_equal(clipped.numpy(), original.numpy())


def test_order_is_value_then_norm_then_global():
    grads = [tf.constant([3.0, 4.0]), tf.constant([0.0, 10.0])]
    # value 3: [3, 3], [0, 3]; norm 3: [2.1213, 2.1213], [0, 3]; global 3 over √18 = 4.2426
    clipped = clip_gradients(grads, clip_value=3.0, clip_norm=3.0, global_clip_norm=3.0)
    scale = 3.0 / np.sqrt(18.0)
    np.testing.assert_allclose(clipped[0].numpy(), [3 / np.sqrt(2) * scale] * 2, rtol=1e-6)
    np.testing.assert_allclose(clipped[1].numpy(), [0.0, 3.0 * scale], rtol=1e-6)


def test_float16_gradients_keep_their_dtype():
    clipped = clip_gradients([tf.constant([300.0, 400.0], tf.float16)], clip_norm=5.0)
    assert clipped[0].dtype == tf.float16
    np.testing.assert_allclose(clipped[0].numpy().astype(np.float32), [3.0, 4.0], rtol=1e-3)
