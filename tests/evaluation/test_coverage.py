"""Tests of qgan.evaluation.coverage.mode_coverage on constructed samples."""

import numpy as np
import pytest

from qgan.evaluation.coverage import mode_coverage

CENTERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
STD = 0.1


def test_counts_high_quality_samples_per_nearest_mode():
    samples = np.array(
        [
            [0.0, 0.0],  # mode 0, exactly on the centre
            [0.29, 0.0],  # mode 0, inside 3·std
            [10.0, 0.2],  # mode 1
            [10.0, 0.31],  # near mode 1 but outside 3·std: low quality
            [5.0, 5.0],  # far from every mode
            [np.nan, 0.0],  # non-finite: low quality
        ]
    )
    report = mode_coverage(samples, CENTERS, STD)
    assert report.counts == (2, 1, 0, 0)
    assert report.modes_captured == 2
    assert report.num_modes == 4
    assert report.num_samples == 6
    assert report.high_quality_fraction == pytest.approx(3 / 6)
    expected_kl = (2 / 3) * np.log((2 / 3) * 4) + (1 / 3) * np.log((1 / 3) * 4)
    assert report.kl_uniform == pytest.approx(expected_kl)


def test_uniform_coverage_has_zero_kl():
    samples = np.repeat(CENTERS, 5, axis=0) + 0.01
    report = mode_coverage(samples, CENTERS, STD)
    assert report.counts == (5, 5, 5, 5)
    assert report.modes_captured == 4
    assert report.high_quality_fraction == 1.0
    assert report.kl_uniform == pytest.approx(0.0, abs=1e-12)


def test_collapse_onto_one_mode_has_kl_log_k_and_no_samples_gives_the_same_bound():
    collapsed = mode_coverage(np.zeros((10, 2)), CENTERS, STD)
    assert collapsed.modes_captured == 1
    assert collapsed.kl_uniform == pytest.approx(np.log(4))
    nothing = mode_coverage(np.full((10, 2), 5.0), CENTERS, STD)
    assert nothing.modes_captured == 0
    assert nothing.high_quality_fraction == 0.0
    assert nothing.kl_uniform == pytest.approx(np.log(4))


def test_threshold_is_in_units_of_std():
    samples = np.array([[0.45, 0.0]])
    assert mode_coverage(samples, CENTERS, STD).modes_captured == 0
    assert mode_coverage(samples, CENTERS, STD, threshold=5.0).modes_captured == 1


def test_a_uniform_ring_of_samples_scores_low_on_the_ring_target():
    from qgan.evaluation.targets import ring

    target = ring()
    angles = np.linspace(0, 2 * np.pi, 2500, endpoint=False)
    samples = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    report = mode_coverage(samples, target.centers, target.std)
    assert report.modes_captured == 8
    # arc within 3·std of 8 centres: 8 · 2·0.06 / (2π·2) of the circle
    assert report.high_quality_fraction == pytest.approx(8 * 2 * 0.06 / (4 * np.pi), abs=0.002)


def test_as_dict_is_json_ready():
    import json

    report = mode_coverage(np.zeros((3, 2)), CENTERS, STD)
    assert json.loads(json.dumps(report.as_dict()))["counts"] == [3, 0, 0, 0]


def test_rejects_non_positive_std():
    with pytest.raises(ValueError, match="std > 0"):
        mode_coverage(np.zeros((1, 2)), CENTERS, 0.0)


@pytest.mark.parametrize(
    "samples, centers, message",
    [
        (np.zeros((4, 3)), CENTERS, r"samples have shape \(4, 3\); allowed: \(N, 2\)"),
        (np.zeros(8), CENTERS, r"samples have shape \(8,\); allowed: \(N, 2\)"),
        (np.zeros((2, 2, 2)), CENTERS, r"samples have shape \(2, 2, 2\)"),
        (np.zeros((4, 2)), np.zeros(8), r"centers have shape \(8,\); allowed: \(K, 2\)"),
        (np.zeros((4, 2)), np.zeros((4, 1)), r"centers have shape \(4, 1\)"),
    ],
)
def test_rejects_samples_or_centres_that_are_not_two_dimensional_points(samples, centers, message):
    with pytest.raises(ValueError, match=message):
        mode_coverage(samples, centers, STD)
