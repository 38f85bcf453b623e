"""The GAN's losses pinned to their formulas with a mixture whose probabilities do not sum to 1.

A heralded circuit's outcome probabilities sum to its trace, not to 1. The stub below has
probabilities summing to 0.5 and a trace of 0.8, so that dividing by the probabilities' sum, by
the trace or by nothing give three different numbers, and the trace penalty's sign shows.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from qgan.models.coordinate_generator import CoordinateGenerator, born_rule_samples
from qgan.models.gan import CoordinateGAN, outcome_weights

LATENT = np.array([[0.3, -0.6, -0.9], [-0.2, 0.8, 0.95], [0.5, 0.1, 0.1], [-0.7, -0.3, 0.4]], np.float32)
REAL = np.array([[1.0, 2.0], [-0.5, 0.5], [0.0, -1.0], [0.25, 0.75]], np.float32)
CRITIC_WEIGHTS, CRITIC_BIAS = np.array([0.7, -0.4]), 0.25
PROBABILITY_SUM, TRACE = 0.5, 0.8


class StubMixture(CoordinateGenerator):
    """Three outcomes at trainable places; probabilities 0.5·softmax(logits + latent); trace 0.8."""

    latent_dim = 3
    jit_compile = False
    outcomes = 3

    def __init__(self):
        super().__init__()
        self.places = self.add_weight(
            shape=(3, 2), initializer=keras.initializers.Constant([[1.0, 0.0], [0.0, 1.0], [-1.0, -0.5]])
        )
        self.logits = self.add_weight(shape=(3,), initializer=keras.initializers.Constant([0.5, -0.25, 0.0]))
        # trace = sigmoid(trace_logit), 0.8 at the start
        self.trace_logit = self.add_weight(shape=(), initializer=keras.initializers.Constant(np.log(4.0)))

    def sample_latent(self, batch_size, seed=None):
        return tf.constant(LATENT[:batch_size])

    def mixture(self, z):
        z = tf.convert_to_tensor(z)
        coordinates = self.places[None] + 0.1 * z[:, None, :2]
        probabilities = PROBABILITY_SUM * tf.nn.softmax(self.logits[None] + z[:, :1], axis=1)
        trace = tf.sigmoid(self.trace_logit) * tf.ones(tf.shape(z)[:1])
        return coordinates, probabilities, trace

    def call(self, z, return_trace=False):
        coordinates, probabilities, trace = self.mixture(z)
        samples, _ = born_rule_samples(coordinates, probabilities, z)
        return (samples, trace) if return_trace else samples


def linear_critic():
    inputs = keras.Input(shape=(2,))
    critic = keras.Model(inputs, keras.layers.Dense(1, name="score")(inputs))
    critic.get_layer("score").set_weights(
        [CRITIC_WEIGHTS.astype(np.float32)[:, None], np.array([CRITIC_BIAS], np.float32)]
    )
    return critic


def stub_gan(trace_penalty=2.0, marginal_critic=True, generator_rate=0.0):
    gan = CoordinateGAN(
        StubMixture(),
        linear_critic(),
        n_critic=1,
        gp_weight=0.0,
        trace_penalty=trace_penalty,
        marginal_critic=marginal_critic,
        seed=0,
    )
    gan.compile(
        g_optimizer=keras.optimizers.SGD(generator_rate),
        d_optimizer=keras.optimizers.SGD(0.0),
        run_eagerly=True,
    )
    return gan


def by_hand(gan):
    coordinates, probabilities, trace = (value.numpy() for value in gan.generator.mixture(LATENT))
    scores = coordinates @ CRITIC_WEIGHTS + CRITIC_BIAS
    return probabilities, scores, trace


def test_the_stub_is_what_the_losses_must_tell_apart():
    probabilities, _, trace = by_hand(stub_gan())
    np.testing.assert_allclose(probabilities.sum(axis=1), PROBABILITY_SUM, rtol=1e-6)
    np.testing.assert_allclose(trace, TRACE, rtol=1e-6)


def test_outcome_weights_divide_by_the_probabilities_sum():
    probabilities = tf.constant([[0.1, 0.3, 0.1], [0.0, 0.25, 0.25]])
    np.testing.assert_allclose(outcome_weights(probabilities).numpy(), [[0.2, 0.6, 0.2], [0.0, 0.5, 0.5]])


def test_generator_loss_is_the_normalised_score_plus_the_trace_penalty():
    gan = stub_gan(trace_penalty=2.0)
    probabilities, scores, _ = by_hand(gan)
    weights = probabilities / PROBABILITY_SUM
    expected = -np.mean(np.sum(weights * scores, axis=1)) + 2.0 * (1.0 - TRACE)
    g_loss, trace, _ = gan.generator_step(len(LATENT))
    assert float(g_loss) == pytest.approx(expected, abs=1e-6)
    # neither unnormalised (÷1) nor divided by the trace
    for wrong in (probabilities, probabilities / TRACE):
        assert abs(float(g_loss) - (-np.mean(np.sum(wrong * scores, axis=1)) + 0.4)) > 0.05
    np.testing.assert_allclose(trace.numpy(), TRACE, rtol=1e-6)


def test_the_trace_penalty_raises_the_trace():
    gan = stub_gan(trace_penalty=5.0, generator_rate=0.5)
    gan.generator_step(len(LATENT))
    _, _, trace = by_hand(gan)
    # d/dw of 5·(1 − sigmoid(w)) is −5·0.8·0.2 = −0.8: one SGD step of 0.5 raises w by 0.4
    expected = 1.0 / (1.0 + np.exp(-(np.log(4.0) + 0.5 * 0.8)))
    np.testing.assert_allclose(trace, expected, rtol=1e-5)
    assert expected > TRACE + 0.04


@pytest.mark.parametrize("marginal_critic", [True, False])
def test_the_critics_wasserstein_estimate_uses_the_normalised_outcome_weights(marginal_critic):
    gan = stub_gan(marginal_critic=marginal_critic)
    probabilities, scores, _ = by_hand(gan)
    weights = probabilities / PROBABILITY_SUM
    real_score = np.mean(REAL @ CRITIC_WEIGHTS + CRITIC_BIAS)
    if marginal_critic:
        fake_score = np.mean(np.sum(weights * scores, axis=1))
        unnormalised = np.mean(np.sum(probabilities * scores, axis=1))
        assert abs(fake_score - unnormalised) > 0.05
    else:  # Born-rule samples: the inverse CDF of the normalised weights at u = (z + 1)/2
        drawn = np.sum(np.cumsum(weights, axis=1)[:, :-1] < ((LATENT[:, -1] + 1) / 2)[:, None], axis=1)
        fake_score = np.mean(scores[np.arange(len(LATENT)), drawn])
    fake, mixture = gan.critic_fakes(len(LATENT))
    d_loss, wasserstein, _, _ = gan.critic_step(tf.constant(REAL), fake, mixture)
    assert float(wasserstein) == pytest.approx(real_score - fake_score, abs=1e-6)
    assert float(d_loss) == pytest.approx(-(real_score - fake_score), abs=1e-6)
