"""A finished run re-evaluated under other detectors: the ideal detector repeats its own final evaluation."""

import json
import os

import pytest

from qgan.training.reevaluation import detector_curves, evaluate_under_detector
from tests.helpers import ROOT

RUN = os.path.join(ROOT, "results", "ring-default-seed0")


@pytest.mark.slow
def test_the_ideal_detector_repeats_the_runs_final_evaluation_and_a_lossy_one_changes_it():
    with open(os.path.join(RUN, "coverage.json")) as handle:
        final = json.load(handle)
    ideal = evaluate_under_detector(RUN, 1.0, 0.0)
    assert ideal["high_quality"] == final["coverage"]["high_quality_fraction"]
    assert ideal["modes"] == final["coverage"]["modes_captured"]
    # the run was trained on another machine; its CPU's kernels round differently (2.6e-6 seen, on an
    # AVX-512 EPYC), while a wrong detector or sample moves the ratio by far more than 1e-4
    assert ideal["w1_ratio"] == pytest.approx(final["fidelity"]["w1_ratio"], rel=1e-4)
    lossy = evaluate_under_detector(RUN, 0.8, 0.0)
    assert lossy["detector_efficiency"] == 0.8 and lossy["high_quality"] < ideal["high_quality"]


def test_curves_take_the_median_over_seeds_of_each_detector():
    rows = [
        {"seed": seed, "detector_efficiency": eta, "dark_counts": 0.0, "high_quality": value}
        for seed, (eta, value) in enumerate([(1.0, 0.9), (1.0, 0.7), (1.0, 0.8), (0.9, 0.1)])
    ]
    trained = [{"detector_efficiency": "0.9", "dark_counts": "0", "hq_median": "0.5"}]
    curves = detector_curves(rows, trained, [1.0, 0.9], [0.0])
    assert curves == {
        "trained under the detector, ν 0": [(0.9, 0.5)],
        "trained ideal, ν 0": [(1.0, 0.8), (0.9, 0.1)],
    }
