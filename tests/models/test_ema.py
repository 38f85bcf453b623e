"""WeightAverage: the warm-up decay in closed form, graph and XLA updates, and the swap for evaluation."""

import numpy as np
import pytest
import tensorflow as tf

from qgan.models.ema import WeightAverage


def expected_averages(values, decay):
    average = values[0]
    for count, value in enumerate(values[1:]):
        d = min(decay, (1 + count) / (10 + count))
        average = d * average + (1 - d) * value
    return average


@pytest.mark.parametrize("compiled", [None, False, True])
def test_the_average_follows_the_warm_up_formula(compiled):
    variable = tf.Variable([0.0, 1.0])
    average = WeightAverage([variable], decay=0.9)
    values = [np.array([0.0, 1.0])]

    def step(value):
        variable.assign(value)
        average.update()

    if compiled is not None:
        step = tf.function(step, jit_compile=compiled)
    rng = np.random.default_rng(0)
    for _ in range(30):
        values.append(rng.normal(size=2))
        step(tf.constant(values[-1], tf.float32))
    np.testing.assert_allclose(average.averages[0].numpy(), expected_averages(values, 0.9), rtol=1e-5)
    assert int(average.updates.numpy()) == 30
    # the first update already takes 90% of the new value: (1 + 0)/(10 + 0) = 0.1
    assert expected_averages(values[:2], 0.9) == pytest.approx(0.1 * values[0] + 0.9 * values[1])


def test_applied_swaps_in_the_average_and_puts_the_weights_back():
    variable = tf.Variable([2.0, 4.0])
    average = WeightAverage([variable], decay=0.5)
    variable.assign([6.0, 8.0])
    average.update()  # d = 0.1: 0.1·[2, 4] + 0.9·[6, 8]
    with average.applied():
        np.testing.assert_allclose(variable.numpy(), [5.6, 7.6], rtol=1e-6)
    np.testing.assert_array_equal(variable.numpy(), [6.0, 8.0])
    with pytest.raises(RuntimeError), average.applied():
        raise RuntimeError("the weights come back even so")
    np.testing.assert_array_equal(variable.numpy(), [6.0, 8.0])


def test_a_decay_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match=r"decay=1.0 is not allowed"):
        WeightAverage([tf.Variable(1.0)], decay=1.0)
