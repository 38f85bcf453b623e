"""ClassicalGenerator: an MLP baseline with about as many trainable parameters as a quantum generator."""

from __future__ import annotations

import keras
import tensorflow as tf

from qgan.models.coordinate_generator import CoordinateGenerator


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


@keras.saving.register_keras_serializable(package="qgan")
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
        latent_distribution: "uniform" or "gaussian" (see `CoordinateGenerator.shaped_latent`).
    """

    def __init__(
        self,
        latent_dim: int = 2,
        hidden_units: tuple[int, ...] = (5, 5),
        output_dim: int = 2,
        seed: int | None = None,
        jit_compile: bool = True,
        latent_distribution: str = "uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._set_latent_distribution(latent_distribution)
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
        self.built = True  # every weight exists now, whatever the input (Keras saving checks this)

    def call(self, z, return_trace: bool = False):
        """Generates coordinates for latent noise z of shape (batch, latent_dim).

        Args:
            z: latent noise, float, shape (batch, latent_dim).
            return_trace: also return a (batch,) trace of ones.

        Returns:
            (batch, output_dim) coordinates, and the traces when return_trace.
        """
        hidden = self.shaped_latent(z, self.latent_dim)
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
            latent_distribution=self.latent_distribution,
        )
        return config


@keras.saving.register_keras_serializable(package="qgan")
class ClassicalMixtureGenerator(CoordinateGenerator):
    """A classical counterpart of the heralded circuit: learned outcome logits and an MLP per outcome.

    Outcome n has probability softmax(logits)_n, independent of the latent; its coordinates are an
    MLP of the latent and the outcome's one-hot code. Like the heralded circuit it is a mixture
    generator: the latent's last column draws the outcome, and `mixture(z)` gives every outcome.

    Args:
        latent_dim: dimension of the continuous latent noise (the latent has one more column).
        outcomes: number of outcomes.
        hidden_units: widths of the MLP's hidden layers.
        output_dim: dimension of the coordinates.
        seed: seed of the weight initialisers.
        jit_compile: compile `generate` with XLA.
        latent_distribution: "uniform" or "gaussian" (see `CoordinateGenerator.shaped_latent`).
    """

    def __init__(
        self,
        latent_dim: int = 2,
        outcomes: int = 8,
        hidden_units: tuple[int, ...] = (5, 5),
        output_dim: int = 2,
        seed: int | None = None,
        jit_compile: bool = True,
        latent_distribution: str = "uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._set_latent_distribution(latent_distribution)
        self.continuous_dim = latent_dim
        self.latent_dim = latent_dim + 1
        self.outcomes = outcomes
        self.hidden_units = tuple(hidden_units)
        self.output_dim = output_dim
        self.seed = seed
        self.jit_compile = jit_compile
        self.logits = self.add_weight(name="logits", shape=(outcomes,), initializer="zeros")
        self.network = ClassicalGenerator(
            latent_dim + outcomes,
            hidden_units,
            output_dim,
            seed=seed,
            jit_compile=jit_compile,
            name="network",
        )
        self.built = True

    def mixture(self, z):
        """Every outcome's coordinates (batch, outcomes, output_dim), probabilities and a trace of ones."""
        z = self.shaped_latent(z, self.continuous_dim)
        batch = tf.shape(z)[0]
        codes = tf.broadcast_to(tf.eye(self.outcomes), tf.stack([batch, self.outcomes, self.outcomes]))
        repeated = tf.broadcast_to(z[:, None, :], tf.stack([batch, self.outcomes, self.continuous_dim]))
        inputs = tf.reshape(tf.concat([repeated, codes], axis=-1), (-1, self.continuous_dim + self.outcomes))
        coordinates = tf.reshape(self.network(inputs), tf.stack([batch, self.outcomes, self.output_dim]))
        probabilities = tf.broadcast_to(tf.nn.softmax(self.logits)[None, :], tf.stack([batch, self.outcomes]))
        return coordinates, probabilities, tf.ones(tf.stack([batch]), tf.float32)

    def call(self, z, return_trace: bool = False):
        """Born-rule samples for latent z of shape (batch, latent_dim + 1), and traces of ones."""
        coordinates, trace, _ = self.sample_outcomes(z)
        return (coordinates, trace) if return_trace else coordinates

    def get_config(self):
        config = super().get_config()
        config.update(
            latent_dim=self.continuous_dim,
            outcomes=self.outcomes,
            hidden_units=self.hidden_units,
            output_dim=self.output_dim,
            seed=self.seed,
            jit_compile=self.jit_compile,
            latent_distribution=self.latent_distribution,
        )
        return config
