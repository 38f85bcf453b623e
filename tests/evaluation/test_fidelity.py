"""qgan.evaluation.fidelity: mode widths, offsets and W1 distances, against closed forms and the target."""

import numpy as np
import pytest

from qgan.evaluation import fidelity, targets


def draw_from(target):
    return lambda count, index: target.sample(count, seed=(77, index))


@pytest.fixture(scope="module", params=["ring", "grid"])
def target(request):
    return getattr(targets, request.param)()


@pytest.fixture(scope="module")
def reference(target):
    return fidelity.reference_distance(draw_from(target), 2500, target.centers, target.std)


def test_samples_of_the_target_itself_match_it(target, reference):
    samples = target.sample(2500, seed=5)
    report = fidelity.fidelity_report(samples, draw_from(target), target.centers, target.std, reference)
    assert report.std_ratio_median == pytest.approx(1.0, abs=0.1)
    assert 0.8 < report.std_ratio_min <= report.std_ratio_max < 1.2
    assert report.offset_median < 0.3
    assert report.w1_ratio == pytest.approx(1.0, abs=0.15)
    assert report.w1 == pytest.approx(report.w1_reference, rel=0.15)


def test_a_point_mass_on_every_centre_has_no_width_and_fails_the_distance(target, reference):
    modes = np.random.default_rng(0).integers(0, len(target.centers), 2500)
    report = fidelity.fidelity_report(
        target.centers[modes], draw_from(target), target.centers, target.std, reference
    )
    assert report.std_ratio_max == pytest.approx(0.0, abs=1e-9) and report.offset_max == pytest.approx(
        0.0, abs=1e-9
    )
    # each mode's mass must travel E|Y − c| = std·√(π/2) ≈ 1.25 std
    assert report.w1 == pytest.approx(np.sqrt(np.pi / 2), rel=0.05)
    assert report.w1_ratio > 3.0


def test_samples_shifted_by_one_std_are_offset_by_one(target, reference):
    samples = target.sample(2500, seed=6) + np.array([target.std, 0.0])
    report = fidelity.fidelity_report(samples, draw_from(target), target.centers, target.std, reference)
    assert report.offset_median == pytest.approx(1.0, abs=0.1)
    assert report.w1_ratio > 2.0


def test_std_ratio_and_offset_in_closed_form():
    centers, std = np.array([[0.0, 0.0], [5.0, 0.0]]), 0.1
    # mode 0: four points at ±a on each axis; mode 1: one point, shifted by 0.5 std
    a = 0.5 * std
    samples = np.array([[a, 0.0], [-a, 0.0], [0.0, a], [0.0, -a], [5.0 + 0.5 * std, 0.0]])
    ratios, offsets = fidelity.mode_shapes(samples, centers, std)
    # on each axis the values are a, −a, 0, 0: a variance (ddof 1) of 2a²/3
    assert ratios[0] == pytest.approx(np.sqrt(2 * a**2 / 3) / std, rel=1e-12)
    assert ratios[1] is None
    assert offsets == pytest.approx((0.0, 0.5), abs=1e-12)


def test_wasserstein1_of_a_translated_cloud_is_the_translation():
    cloud = np.random.default_rng(1).normal(size=(200, 2))
    assert fidelity.wasserstein1(cloud, cloud + [0.3, 0.4]) == pytest.approx(0.5, rel=1e-9)
    assert fidelity.wasserstein1(cloud, cloud[::-1]) == pytest.approx(0.0, abs=1e-8)


def test_the_mode_conditional_distance_ignores_the_mixture_weights_that_plain_w1_sees():
    ring = targets.ring()
    samples, reference = ring.sample(2500, seed=1), ring.sample(2500, seed=2)
    nearest = np.argmin(np.linalg.norm(samples[:, None] - ring.centers[None], axis=2), axis=1)
    lopsided = np.concatenate([samples[nearest < 4], samples[nearest < 4], samples[nearest >= 4]])
    plain = fidelity.distance(lopsided, reference)
    conditional = fidelity.distance(lopsided, reference, ring.centers)
    assert conditional == pytest.approx(fidelity.distance(samples, reference, ring.centers), rel=0.2)
    assert plain > 10 * conditional


def test_unmeasured_modes_and_non_finite_rows_are_left_out():
    centers = np.array([[0.0, 0.0], [5.0, 0.0]])
    samples = np.array([[0.01, 0.0], [-0.01, 0.0], [np.nan, 0.0]])
    report = fidelity.FidelityReport(*fidelity.mode_shapes(samples, centers, 0.1))
    assert report.std_ratios[1] is None and report.offsets[1] is None
    assert report.std_ratio_median == report.std_ratio_max and report.w1_ratio is None
    assert fidelity.distance(samples, np.array([[0.0, 0.0], [5.0, 0.0]]), centers) == pytest.approx(0.01)
    assert set(report.summary()) == set(fidelity.FIDELITY_COLUMNS)
