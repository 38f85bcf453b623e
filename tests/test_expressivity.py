"""Tests of qgan.expressivity: the sector map, a positive control, and the script's table."""

import json
import os

import keras
import numpy as np
import pytest

from qgan.classical_generator import ClassicalGenerator
from qgan.expressivity import fit_sector_map, main, sector_targets
from qgan.targets import ring


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


@pytest.mark.slow
def test_script_fits_each_model_and_writes_its_report(tmp_path):
    lines = []
    argv = ["--layers", "1", "--reupload", "yes", "--cutoff", "4", "--classical-widths", "3", "--steps", "20"]
    status = main([*argv, "--output-dir", str(tmp_path)], log=lines.append)
    assert status == 0
    (report,) = os.listdir(tmp_path)
    fits = json.loads((tmp_path / report).read_text())["fits"]
    assert [fit["generator"] for fit in fits] == ["quantum, 1 layers, re-uploading", "classical MLP 2-3-3-2"]
    assert [fit["parameters"] for fit in fits] == [14 + 2 + 4, 9 + 12 + 8]
    assert 0.0 < fits[0]["trace_min"] <= fits[0]["trace_mean"] <= 1.0 + 1e-6
    table = lines[-1].splitlines()
    assert table[1].startswith("| generator | parameters | modes | HQ % |")
    assert table[3].startswith("| quantum, 1 layers, re-uploading | 20 | ")
    assert table[4].startswith("| classical MLP 2-3-3-2 | 29 | ")


def test_outcome_loss_sends_outcome_n_to_centre_n_and_keeps_every_centre_fed():
    import tensorflow as tf

    from qgan.expressivity import outcome_loss

    centers = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    coordinates = tf.constant([[[1.0, 0.5], [0.0, 1.0], [9.0, 9.0]], [[1.0, 0.0], [0.0, 0.0], [9.0, 9.0]]])
    probabilities = tf.constant([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2]])
    # squared distances: outcome 0 → 0.25 and 0, outcome 1 → 0 and 1; outcome 2 has no centre
    # mean outcome distribution q = (0.35, 0.425, 0.225); KL term −mean(log(2·q_0), log(2·q_1))
    expected = (0.25 + 0 + 0 + 1) / 4 - (np.log(0.7) + np.log(0.85)) / 2
    assert float(outcome_loss(coordinates, probabilities, centers)) == pytest.approx(expected, rel=1e-6)
    starved = tf.constant([[0.99, 1e-9, 0.01], [0.99, 1e-9, 0.01]])
    assert float(outcome_loss(coordinates, starved, centers)) > 8.0


@pytest.mark.slow
def test_script_fits_a_heralded_circuit(tmp_path):
    lines = []
    argv = ["--readout", "heralded", "--layers", "1", "--reupload", "yes", "--cutoff", "5"]
    argv += ["--classical-widths", "none", "--steps", "20", "--latent-scale", "0.1", "--ancilla-offset", "1"]
    status = main([*argv, "--output-dir", str(tmp_path)], log=lines.append)
    assert status == 0
    (report,) = os.listdir(tmp_path)
    (fit,) = json.loads((tmp_path / report).read_text())["fits"]
    assert fit["generator"] == "quantum, 1 layers, re-uploading, heralded (5 outcomes)"
    assert fit["parameters"] == 14 + 2 + 4
    assert 0.9 < fit["trace_min"] <= fit["trace_mean"] <= 1.0 + 1e-6
    assert np.isfinite(fit["loss"])
