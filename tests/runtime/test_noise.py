"""noise.uniform draws Keras' own numbers from a SeedGenerator, eagerly, in graphs and under XLA."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from qgan.runtime import noise


@pytest.mark.parametrize("compiled", ["eager", "graph", "xla"])
def test_uniform_gives_the_numbers_of_keras_uniform(compiled):
    def draws(function, generator):
        def three():
            return [
                function((5, 3), minval=-1.0, maxval=2.0, dtype="float32", seed=generator) for _ in range(3)
            ]

        if compiled != "eager":
            three = tf.function(three, autograph=False, jit_compile=compiled == "xla")
        return np.stack([draw.numpy() for draw in three()])

    ours = draws(noise.uniform, keras.random.SeedGenerator(42))
    theirs = draws(keras.random.uniform, keras.random.SeedGenerator(42))
    np.testing.assert_array_equal(ours, theirs)
    assert ours.min() >= -1.0 and ours.max() < 2.0
    assert len({draw.tobytes() for draw in ours}) == 3  # the generator advanced between draws


def test_uniform_with_an_integer_seed_is_keras_uniform():
    np.testing.assert_array_equal(
        noise.uniform((4,), seed=7).numpy(), keras.random.uniform((4,), seed=7).numpy()
    )
