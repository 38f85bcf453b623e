"""DirectCall: a tf.function run through its concrete functions, traced once per shape, results unchanged."""

import numpy as np
import pytest
import tensorflow as tf

from qgan.runtime.direct_call import DirectCall


def counting_function(jit_compile=False):
    """A tf.function that counts its traces and its runs (a variable it adds to), returning a dict."""
    traces = []
    runs = tf.Variable(0.0)

    @tf.function(autograph=False, jit_compile=jit_compile)
    def function(x, y):
        traces.append(x.shape)
        runs.assign_add(1.0)
        return {"sum": tf.reduce_sum(x * y), "product": x * y}

    return function, traces, runs


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_results_are_the_tf_functions_and_each_shape_is_traced_once(jit_compile):
    function, traces, runs = counting_function(jit_compile)
    call = DirectCall(function)
    x = tf.constant([1.0, 2.0, 3.0])
    y = tf.constant([4.0, 5.0, 6.0])
    first = call(x, y)
    second = call(x, 2.0 * y)
    assert float(first["sum"]) == 32.0
    assert float(second["sum"]) == 64.0
    np.testing.assert_array_equal(second["product"].numpy(), [8.0, 20.0, 36.0])
    assert float(runs.numpy()) == 2.0  # both calls ran the graph, and its variable update
    assert len(traces) == 1
    # a new shape is traced once more; the tf.function itself then finds both graphs traced
    call(tf.constant([1.0, 1.0]), tf.constant([2.0, 3.0]))
    assert [list(shape) for shape in traces] == [[3], [2]]
    assert float(function(x, y)["sum"]) == 32.0
    assert len(traces) == 2
    assert float(runs.numpy()) == 4.0


class TracesOnly:
    """A tf.function whose own call (argument binding, then its graph) is refused."""

    def __init__(self, function):
        self.function = function
        self.concrete_requests = 0

    def get_concrete_function(self, *arguments):
        self.concrete_requests += 1
        return self.function.get_concrete_function(*arguments)

    def __call__(self, *arguments):
        raise AssertionError("called through the tf.function")


def test_calls_run_the_concrete_function_asked_for_once_per_shape():
    function, traces, runs = counting_function()
    wrapped = TracesOnly(function)
    call = DirectCall(wrapped)
    for value in (1.0, 2.0, 3.0):
        result = call(tf.constant([value]), tf.constant([2.0]))
    assert float(result["sum"]) == 6.0
    assert wrapped.concrete_requests == 1
    assert float(runs.numpy()) == 3.0


def test_a_new_dtype_is_a_new_trace():
    function, traces, _ = counting_function()
    call = DirectCall(function)
    call(tf.constant([1.0]), tf.constant([2.0]))
    result = call(tf.constant([1.0], tf.float64), tf.constant([2.0], tf.float64))
    assert result["sum"].dtype == tf.float64
    assert len(traces) == 2


def test_an_argument_that_is_not_a_tensor_is_refused_by_position():
    function, traces, _ = counting_function()
    with pytest.raises(TypeError, match="argument 1 is a ndarray; allowed: a tf.Tensor"):
        DirectCall(function)(tf.constant([1.0]), np.array([2.0], np.float32))
    assert traces == []
