"""What every generator shares: latent noise, traced forward passes, chunked sampling, Born-rule draws."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from qgan.runtime import noise

LATENT_DISTRIBUTIONS = ("uniform", "gaussian")
# a uniform draw this close to ±1 maps to ±5.3 standard deviations (erfinv(±1) is infinite)
GAUSSIAN_LIMIT = 1.0 - 1.2e-7


class CoordinateGenerator(keras.layers.Layer):
    """What the GAN needs of a generator: latent noise, a forward pass with traces, chunked sampling.

    Subclasses set `latent_dim` and `jit_compile`, and implement `call(z, return_trace=False)`.
    A mixture generator (`outcomes` > 0) also implements `mixture(z)`: every outcome's coordinates
    and probability for each latent point. Its last latent column is then the measurement's
    randomness: u = (z_last + 1)/2 picks the outcome by the Born rule (inverse CDF), so samples
    stay a deterministic function of the latent noise.
    """

    latent_dim: int
    jit_compile: bool
    supports_graph = True
    #: number of discrete outcomes of a mixture generator; 0 for a plain map of the latent.
    outcomes = 0
    #: how the generator reads its continuous latent columns (see `shaped_latent`)
    latent_distribution = "uniform"
    _compiled_forward = None

    def _set_latent_distribution(self, latent_distribution: str) -> None:
        if latent_distribution not in LATENT_DISTRIBUTIONS:
            allowed = ", ".join(LATENT_DISTRIBUTIONS)
            raise ValueError(f"unknown latent distribution {latent_distribution!r}; allowed: {allowed}")
        self.latent_distribution = latent_distribution

    def shaped_latent(self, z, columns: int):
        """The first `columns` latent columns as the generator reads them.

        The latent noise is always uniform on [-1, 1] (so that samples stay a function of it);
        "uniform" reads it as it is, "gaussian" as standard normal values through the normal's
        inverse CDF, √2·erfinv(z), cut at ±5.3. A mixture's outcome column is never reshaped.
        """
        z = tf.convert_to_tensor(z, tf.float32)[:, :columns]
        if self.latent_distribution == "uniform":
            return z
        return np.sqrt(2.0).astype(np.float32) * tf.math.erfinv(
            tf.clip_by_value(z, -GAUSSIAN_LIMIT, GAUSSIAN_LIMIT)
        )

    def parameter_count(self) -> int:
        """The number of trainable scalars."""
        return sum(int(np.prod(weight.shape)) for weight in self.trainable_weights)

    def sample_latent(self, batch_size: int, seed=None) -> tf.Tensor:
        """Uniform latent noise in [-1, 1]^latent_dim (bounded, so no sample leaves the cutoff's reach)."""
        return noise.uniform((batch_size, self.latent_dim), minval=-1.0, maxval=1.0, seed=seed)

    def mixture(self, z):
        """Every outcome's coordinates (batch, outcomes, 2), probabilities (batch, outcomes) and trace."""
        raise NotImplementedError(f"{type(self).__name__} is not a mixture generator")

    def sample_outcomes(self, z):
        """Samples of a latent batch with their outcomes: (coordinates, trace, outcome (batch,) int32).

        A mixture generator draws each sample's outcome by the Born rule from the latent's last
        column; any other generator reports outcome 0 for every sample.
        """
        if not self.outcomes:
            coordinates, trace = self(z, return_trace=True)
            return coordinates, trace, tf.zeros(tf.shape(coordinates)[:1], tf.int32)
        coordinates, probabilities, trace = self.mixture(z)
        chosen, outcome = born_rule_samples(coordinates, probabilities, z)
        return chosen, trace, outcome

    def generate(self, num_samples: int, chunk_size: int = 256, seed: int | None = None, outcomes=False):
        """Generates num_samples coordinates in fixed-size chunks (outside any training step).

        Args:
            num_samples: how many samples.
            chunk_size: samples per engine call; every call has this batch size.
            seed: seed of the latent noise.
            outcomes: also return each sample's outcome (always 0 for a generator without outcomes).

        Returns:
            (coordinates (num_samples, output_dim), trace (num_samples,)) as NumPy arrays, and the
            (num_samples,) outcomes when asked for.
        """
        rng = np.random.default_rng(seed)
        chunks = -(-num_samples // chunk_size)
        z = rng.uniform(-1.0, 1.0, size=(chunks * chunk_size, self.latent_dim)).astype(np.float32)
        results = ([], [], [])
        forward = self._sampling_forward()
        for start in range(0, len(z), chunk_size):
            for collected, value in zip(results, forward(tf.constant(z[start : start + chunk_size]))):
                collected.append(np.asarray(value))
        coordinates, traces, drawn = (np.concatenate(collected)[:num_samples] for collected in results)
        return (coordinates, traces, drawn) if outcomes else (coordinates, traces)

    def _sampling_forward(self):
        """(coordinates, trace, outcome) of a latent batch: compiled when the engine allows graphs."""
        if not self.supports_graph:
            return self.sample_outcomes
        if self._compiled_forward is None:
            # traced as written (no AutoGraph): the sampler branches only on Python values, and
            # converting the engine's code took longer than tracing it
            self._compiled_forward = tf.function(
                self.sample_outcomes, autograph=False, jit_compile=self.jit_compile, reduce_retracing=True
            )
        return self._compiled_forward


def born_rule_samples(coordinates, probabilities, z):
    """Each row's sample of a mixture: the coordinates of the outcome its latent's last column draws.

    Args:
        coordinates: (batch, outcomes, d) every outcome's coordinates.
        probabilities: (batch, outcomes) outcome probabilities.
        z: (batch, latent_dim) latent noise; its last column draws the outcome.

    Returns:
        ((batch, d) samples, (batch,) int32 outcomes).
    """
    outcome = draw_outcome(probabilities, z[:, -1])
    return tf.gather(coordinates, outcome, axis=1, batch_dims=1), outcome


def draw_outcome(probabilities, uniform_latent):
    """The Born-rule outcome of each row: the inverse CDF of the normalised probabilities at u.

    Args:
        probabilities: (batch, outcomes) non-negative, not necessarily normalised.
        uniform_latent: (batch,) latent values in [-1, 1]; u = (value + 1)/2.

    Returns:
        (batch,) int32 outcome indices.
    """
    probabilities = tf.convert_to_tensor(probabilities)
    cumulative = tf.cumsum(probabilities, axis=1)
    threshold = (tf.cast(uniform_latent, cumulative.dtype) + 1.0) / 2.0 * cumulative[:, -1]
    below = tf.cast(cumulative[:, :-1] < threshold[:, None], tf.int32)
    return tf.reduce_sum(below, axis=1)
