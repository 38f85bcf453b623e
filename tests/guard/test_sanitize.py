"""qgan.guard.Sanitize and check_finite on constructed tensors."""

import keras
import numpy as np
import pytest

from qgan.guard import Problem, Sanitize, check_finite

VALUES = np.array([1.0, np.nan, np.inf, -np.inf, -50.0, 2000.0], np.float32)


def test_sanitize_defaults_replace_nan_by_zero_and_infinities_by_the_float_extremes():
    out = Sanitize()(VALUES).numpy()
    big = np.finfo(np.float32).max
    np.testing.assert_array_equal(out, [1.0, 0.0, big, -big, -50.0, 2000.0])


def test_sanitize_with_a_clamp_bounds_everything():
    out = Sanitize(nan=-1.0, clamp=10.0)(VALUES).numpy()
    np.testing.assert_array_equal(out, [1.0, -1.0, 10.0, -10.0, -10.0, 10.0])
    out = Sanitize(posinf=5.0, neginf=-7.0, clamp=(-8.0, 6.0))(VALUES).numpy()
    np.testing.assert_array_equal(out, [1.0, 0.0, 5.0, -7.0, -8.0, 6.0])


def test_sanitize_round_trips_through_its_config():
    layer = Sanitize(nan=0.5, clamp=3.0)
    copy = Sanitize.from_config(layer.get_config())
    np.testing.assert_array_equal(copy(VALUES).numpy(), layer(VALUES).numpy())


def test_sanitize_bad_clamp_is_a_clear_error():
    with pytest.raises(ValueError, match="clamp=-1.0 is not allowed"):
        Sanitize(clamp=-1.0)
    with pytest.raises(ValueError, match=r"clamp=\(2.0, 1.0\) is not allowed; low must be below high"):
        Sanitize(clamp=(2.0, 1.0))


def test_check_finite_names_every_problem():
    problems = check_finite(
        {
            "weights": keras.Variable(np.array([1.0, 2.0], np.float32)),
            "activations": VALUES,
            "counts": np.array([1, 10**6]),
        }
    )
    assert problems == [
        Problem("activations", "nan", 1, 6),
        Problem("activations", "inf", 2, 6),
        Problem("activations", "extreme", 1, 6),
    ]
    assert str(problems[1]) == "activations: 2 of 6 entries inf"
    assert check_finite({"activations": VALUES}, extreme=None)[-1].kind == "inf"
    assert check_finite({"fine": np.zeros(3)}) == []
