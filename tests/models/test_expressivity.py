"""Tests of qgan.models.expressivity: the sector map, a positive control, and the script's table."""

import keras
import numpy as np
import pytest

from qgan.evaluation.targets import ring
from qgan.models.classical_generator import ClassicalGenerator
from qgan.models.expressivity import fit_sector_map, sector_targets


def test_sector_map_sends_each_angle_to_the_nearest_ring_centre():
    centers = ring().centers
    z = np.array([[1.0, 0.0], [0.5, 0.45], [0.0, -0.3], [-1.0, -0.01], [0.2, -0.19], [0.9, 0.3]])
    expected_sectors = [0, 1, 6, 4, 7, 0]
    np.testing.assert_array_equal(sector_targets(z, centers), centers[expected_sectors].astype(np.float32))


def test_a_wide_mlp_fits_the_clusters_and_a_tiny_one_cannot():
    keras.utils.set_random_seed(0)
    wide = fit_sector_map(ClassicalGenerator(hidden_units=(64, 64), seed=0), ring(), steps=1500)
    keras.utils.set_random_seed(0)
    tiny = fit_sector_map(ClassicalGenerator(hidden_units=(2, 2), seed=0), ring(), steps=1500)
    assert wide.modes_captured == 8 and wide.high_quality_fraction > 0.5 and wide.kl_uniform < 0.1
    assert tiny.high_quality_fraction < 0.1
    assert wide.loss < tiny.loss
    assert wide.trace_mean == wide.trace_min == 1.0


def test_outcome_loss_sends_outcome_n_to_centre_n_and_keeps_every_centre_fed():
    import tensorflow as tf

    from qgan.models.expressivity import outcome_loss

    centers = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    coordinates = tf.constant([[[1.0, 0.5], [0.0, 1.0], [9.0, 9.0]], [[1.0, 0.0], [0.0, 0.0], [9.0, 9.0]]])
    probabilities = tf.constant([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2]])
    # squared distances: outcome 0 → 0.25 and 0, outcome 1 → 0 and 1; outcome 2 has no centre
    # mean outcome distribution q = (0.35, 0.425, 0.225); KL term −mean(log(2·q_0), log(2·q_1))
    expected = (0.25 + 0 + 0 + 1) / 4 - (np.log(0.7) + np.log(0.85)) / 2
    assert float(outcome_loss(coordinates, probabilities, centers)) == pytest.approx(expected, rel=1e-6)
    starved = tf.constant([[0.99, 1e-9, 0.01], [0.99, 1e-9, 0.01]])
    assert float(outcome_loss(coordinates, starved, centers)) > 8.0
