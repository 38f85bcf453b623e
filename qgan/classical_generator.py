"""ClassicalGenerator: an MLP baseline with about as many trainable parameters as a quantum generator."""

from __future__ import annotations

import keras
import tensorflow as tf

from qgan.generator import CoordinateGenerator


def mlp_parameter_count(latent_dim: int, hidden_units: tuple[int, ...], output_dim: int) -> int:
    """Weights and biases of a dense network latent_dim → hidden_units… → output_dim."""
    widths = (latent_dim, *hidden_units, output_dim)
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths[:-1], widths[1:]))


def matching_hidden_units(parameter_count: int, latent_dim: int, output_dim: int, depth: int = 2) -> tuple:
    """Equal hidden widths whose MLP has the parameter count closest to `parameter_count`.

    Args:
        parameter_count: the count to match (e.g. a quantum generator's trainable parameters).
        latent_dim: input width.
        output_dim: output width.
        depth: number of hidden layers.

    Returns:
        A tuple of `depth` equal widths, each ≥ 1.
    """

    def distance(units):
        return abs(mlp_parameter_count(latent_dim, units, output_dim) - parameter_count)

    width = 1
    while mlp_parameter_count(latent_dim, (width + 1,) * depth, output_dim) <= parameter_count:
        width += 1
    return min((width,) * depth, (width + 1,) * depth, key=distance)


class ClassicalGenerator(CoordinateGenerator):
    """Maps latent noise z ∈ [-1, 1]^latent_dim to 2-D coordinates through a small MLP.

    Hidden layers use LeakyReLU (slope 0.2); the output layer is linear. There is no quantum
    state, so the trace it reports is exactly 1 and a trace penalty has no effect on it.

    Args:
        latent_dim: dimension of the latent noise.
        hidden_units: widths of the hidden layers.
        output_dim: dimension of the coordinates.
        seed: seed of the weight initialisers.
        jit_compile: compile `generate` with XLA.
    """

    def __init__(
        self,
        latent_dim: int = 2,
        hidden_units: tuple[int, ...] = (5, 5),
        output_dim: int = 2,
        seed: int | None = None,
        jit_compile: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.hidden_units = tuple(hidden_units)
        self.output_dim = output_dim
        self.seed = seed
        self.jit_compile = jit_compile
        widths = (latent_dim, *self.hidden_units, output_dim)
        self.kernels, self.biases = [], []
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            initializer = keras.initializers.GlorotUniform(seed=None if seed is None else seed + index)
            kernel = self.add_weight(name=f"kernel_{index}", shape=(fan_in, fan_out), initializer=initializer)
            self.kernels.append(kernel)
            self.biases.append(self.add_weight(name=f"bias_{index}", shape=(fan_out,), initializer="zeros"))

    def call(self, z, return_trace: bool = False):
        """Generates coordinates for latent noise z of shape (batch, latent_dim).

        Args:
            z: latent noise, float, shape (batch, latent_dim).
            return_trace: also return a (batch,) trace of ones.

        Returns:
            (batch, output_dim) coordinates, and the traces when return_trace.
        """
        hidden = tf.convert_to_tensor(z, tf.float32)
        last = len(self.kernels) - 1
        for index, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            hidden = tf.matmul(hidden, kernel) + bias
            if index < last:
                hidden = tf.nn.leaky_relu(hidden, alpha=0.2)
        if return_trace:
            return hidden, tf.ones(tf.shape(hidden)[:1], hidden.dtype)
        return hidden

    def get_config(self):
        config = super().get_config()
        config.update(
            latent_dim=self.latent_dim,
            hidden_units=self.hidden_units,
            output_dim=self.output_dim,
            seed=self.seed,
            jit_compile=self.jit_compile,
        )
        return config
