"""Tests of qgan.models.gan.CoordinateGAN: step counts and guarded updates on real and poisoned batches."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from qgan.models.classical_generator import ClassicalGenerator, ClassicalMixtureGenerator
from qgan.models.critic import build_critic
from qgan.models.gan import CoordinateGAN
from qgan.models.generator import QuantumGenerator


def small_gan(n_critic=2, guard_options=None, jit_compile=False, generator=None):
    if generator is None:
        generator = QuantumGenerator(modes=2, layers=1, cutoff=5, seed=0, jit_compile=jit_compile)
    gan = CoordinateGAN(
        generator,
        build_critic((8,), seed=0),
        n_critic=n_critic,
        gp_weight=10.0,
        trace_penalty=1.0,
        guard_options=guard_options,
        seed=0,
    )
    gan.compile(
        g_optimizer=keras.optimizers.Adam(1e-3),
        d_optimizer=keras.optimizers.Adam(1e-3),
        run_eagerly=not jit_compile,
        jit_compile=jit_compile,
    )
    return gan


def test_train_step_takes_n_critic_critic_steps_and_one_generator_step():
    gan = small_gan(n_critic=3)
    real = np.random.default_rng(0).normal(size=(3 * 4, 2)).astype(np.float32)
    logs = gan.train_step(real)
    assert int(gan.d_optimizer.iterations.numpy()) == 3
    assert int(gan.g_optimizer.iterations.numpy()) == 1
    assert sorted(gan.trackers) == sorted(
        ["d_loss", "g_loss", "gp", "wasserstein", "d_grad_norm", "g_grad_norm", "trace_mean", "trace_min"]
    )
    for key in gan.trackers:
        assert np.isfinite(float(logs[key])), key
    assert 0.9 < float(logs["trace_min"]) <= float(logs["trace_mean"]) <= 1.0 + 1e-6
    assert int(logs["d_skipped_steps"]) == 0 and int(logs["g_skipped_steps"]) == 0


def test_a_nan_batch_leaves_the_critic_untouched_and_is_counted():
    gan = small_gan(n_critic=2)
    before = [variable.numpy().copy() for variable in gan.critic.trainable_variables]
    poisoned = np.full((2 * 4, 2), np.nan, np.float32)
    logs = gan.train_step(poisoned)
    for variable, old in zip(gan.critic.trainable_variables, before):
        np.testing.assert_array_equal(variable.numpy(), old)
    assert int(gan.d_optimizer.iterations.numpy()) == 0
    assert int(logs["d_skipped_steps"]) == 2
    assert int(logs["d_nonfinite_loss_steps"]) == 2
    assert int(gan.g_optimizer.iterations.numpy()) == 1
    assert all(np.all(np.isfinite(v.numpy())) for v in gan.generator.trainable_variables)


@pytest.mark.parametrize("n_critic", [1, 2])
def test_fit_runs_the_guarded_steps(n_critic):
    gan = small_gan(n_critic=n_critic)
    data = np.random.default_rng(1).normal(size=(n_critic * 4 * 3, 2)).astype(np.float32)
    history = gan.fit(data, batch_size=n_critic * 4, epochs=1, verbose=0, shuffle=False)
    assert int(gan.g_optimizer.iterations.numpy()) == 3
    assert int(gan.d_optimizer.iterations.numpy()) == 3 * n_critic
    assert np.isfinite(history.history["d_loss"][0])


def fit_and_step_under_xla():
    """fit under XLA over 3 batches, and the compiled train_step batch by batch, then one step more.

    The generator is a classical MLP: the GAN's path is that of small_gan's expectation circuit
    (one sample per latent row), compiled in a fraction of the circuit's time.

    Returns:
        The iterations, both models' weights, the weights after a fourth step and both losses.
    """
    data = np.random.default_rng(2).normal(size=(3 * 2 * 4, 2)).astype(np.float32)
    fitted = small_gan(jit_compile=True, generator=ClassicalGenerator(hidden_units=(4,), seed=0))
    history = fitted.fit(data, batch_size=2 * 4, epochs=1, verbose=0, shuffle=False)
    stepped = small_gan(jit_compile=True, generator=ClassicalGenerator(hidden_units=(4,), seed=0))
    step = tf.function(stepped.train_step, jit_compile=True, autograph=False)
    for batch in np.split(data, 3):
        logs = step(tf.constant(batch))
    iterations = (int(fitted.g_optimizer.iterations.numpy()), int(fitted.d_optimizer.iterations.numpy()))
    fitted_weights = [v.numpy() for v in fitted.trainable_variables]
    stepped_weights = [v.numpy() for v in stepped.trainable_variables]
    step(tf.constant(data[:8]))
    extra = [v.numpy() for v in stepped.trainable_variables]
    return (
        iterations,
        fitted_weights,
        stepped_weights,
        extra,
        history.history["g_loss"][0],
        float(logs["g_loss"]),
    )


def test_fit_under_xla_takes_exactly_the_steps_of_the_compiled_train_step():
    """fit under XLA (its two compiled phases) steps exactly as the compiled train_step, batch by batch.

    In a fresh process: the suite's other tests leave process-wide state (XLA flags, Keras
    settings) that moved the two paths apart by up to 5e-3 when they shared a worker.
    """
    from qgan.runtime.fresh_process import in_fresh_process

    iterations, fitted, stepped, extra, fit_loss, step_loss = in_fresh_process(fit_and_step_under_xla)
    assert iterations == (3, 6)
    for ours, theirs in zip(fitted, stepped):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    # a fourth step (Adam, rate 1e-3) moves the weights by about 1e-3, so the check fails on an extra step
    assert max(float(np.max(np.abs(after - before))) for after, before in zip(extra, stepped)) > 5e-4
    assert fit_loss == pytest.approx(step_loss, rel=1e-6, abs=0.0)


def test_guard_options_reach_both_players_and_nan_batches_trigger_a_critic_rollback():
    gan = small_gan(
        n_critic=2, guard_options={"max_consecutive_bad": 2, "clip_norm": 0.5, "nonfinite": "skip"}
    )
    for guard in (gan.critic_guard, gan.generator_guard):
        assert (guard.max_consecutive_bad, guard.clip_norm, guard.nonfinite) == (2, 0.5, "skip")
    real = np.random.default_rng(2).normal(size=(2 * 4, 2)).astype(np.float32)
    gan.train_step(real)
    logs = gan.train_step(np.full_like(real, np.nan))
    assert int(logs["d_recoveries"]) == 1 and int(logs["g_recoveries"]) == 0
    assert float(gan.d_optimizer.learning_rate.numpy()) == np.float32(1e-3) * np.float32(0.5)
    assert all(np.all(np.isfinite(v.numpy())) for v in gan.critic.trainable_variables)


def linear_critic(weights=(0.7, -0.4), bias=0.25):
    inputs = keras.Input(shape=(2,))
    outputs = keras.layers.Dense(1, name="score")(inputs)
    critic = keras.Model(inputs, outputs)
    critic.get_layer("score").set_weights(
        [np.array(weights, np.float32)[:, None], np.array([bias], np.float32)]
    )
    return critic


def mixture_gan(marginal_critic, latent, gp_weight=0.0, gp_target=1.0):
    generator = ClassicalMixtureGenerator(latent_dim=2, outcomes=3, hidden_units=(4,), seed=1)
    generator.logits.assign([0.5, -0.25, 0.0])
    generator.sample_latent = lambda batch_size, seed=None: tf.constant(latent[:batch_size])
    gan = CoordinateGAN(
        generator,
        linear_critic(),
        n_critic=1,
        gp_weight=gp_weight,
        gp_target=gp_target,
        marginal_critic=marginal_critic,
        seed=0,
    )
    gan.compile(
        g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.0), run_eagerly=True
    )
    return gan


LATENT = np.array([[0.3, -0.6, -0.9], [-0.2, 0.8, 0.95], [0.5, 0.1, 0.1]], np.float32)
REAL = np.array([[1.0, 2.0], [-0.5, 0.5], [0.0, -1.0]], np.float32)


def scores_by_hand(gan, latent):
    coordinates, probabilities, _ = (value.numpy() for value in gan.generator.mixture(latent))
    weights = probabilities / probabilities.sum(axis=1, keepdims=True)
    scores = coordinates @ np.array([0.7, -0.4]) + 0.25
    return coordinates, weights, scores


def test_generator_loss_is_minus_the_outcome_weighted_critic_score_and_raises_it():
    gan = mixture_gan(False, LATENT)
    _, weights, scores = scores_by_hand(gan, LATENT)
    expected = -np.mean(np.sum(weights * scores, axis=1))
    g_loss, trace, _ = gan.generator_step(3)
    assert float(g_loss) == pytest.approx(expected, abs=1e-6)
    np.testing.assert_array_equal(trace.numpy(), [1.0, 1.0, 1.0])
    _, weights_after, after = scores_by_hand(gan, LATENT)
    # one SGD step on the generator raises the critic's weighted score of its outcomes
    assert np.mean(np.sum(weights_after * after, axis=1)) > -expected + 1e-3
    entropy = -np.sum(weights.mean(0) * np.log(weights.mean(0)))
    assert float(gan.trackers["outcome_entropy"].result()) == pytest.approx(entropy, abs=1e-6)


@pytest.mark.parametrize("marginal_critic", [False, True])
def test_critic_loss_scores_real_minus_fake_sampled_or_marginalised(marginal_critic):
    gan = mixture_gan(marginal_critic, LATENT)
    coordinates, weights, scores = scores_by_hand(gan, LATENT)
    real_score = np.mean(REAL @ np.array([0.7, -0.4]) + 0.25)
    if marginal_critic:
        fake_score = np.mean(np.sum(weights * scores, axis=1))
    else:
        cumulative = np.cumsum(weights, axis=1)[:, :-1]
        drawn = np.sum(cumulative < ((LATENT[:, -1] + 1) / 2)[:, None], axis=1)
        fake_score = np.mean(scores[np.arange(3), drawn])
    fake, mixture = gan.critic_fakes(3)
    d_loss, wasserstein, penalty, _ = gan.critic_step(tf.constant(REAL), fake, mixture)
    assert float(wasserstein) == pytest.approx(real_score - fake_score, abs=1e-6)
    assert float(d_loss) == pytest.approx(fake_score - real_score, abs=1e-6)
    assert (mixture is not None) == marginal_critic


@pytest.mark.parametrize("gp_target", [1.0, 0.0])
def test_critic_loss_adds_the_weighted_penalty_around_its_target_norm(gp_target):
    gan = mixture_gan(True, LATENT, gp_weight=10.0, gp_target=gp_target)
    _, weights, scores = scores_by_hand(gan, LATENT)
    wasserstein = np.mean(REAL @ np.array([0.7, -0.4]) + 0.25) - np.mean(np.sum(weights * scores, axis=1))
    # a linear critic's gradient is its weight vector (norm √0.65) at every interpolate
    penalty = (np.sqrt(0.65) - gp_target) ** 2
    fake, mixture = gan.critic_fakes(3)
    d_loss, measured_wasserstein, measured_penalty, _ = gan.critic_step(tf.constant(REAL), fake, mixture)
    assert float(measured_penalty) == pytest.approx(penalty, abs=1e-6)
    assert float(measured_wasserstein) == pytest.approx(wasserstein, abs=1e-6)
    assert float(d_loss) == pytest.approx(-wasserstein + 10.0 * penalty, abs=1e-5)


def test_plain_generator_loss_is_minus_the_mean_critic_score_and_a_step_raises_it():
    generator = ClassicalGenerator(latent_dim=2, hidden_units=(4,), seed=3)
    generator.sample_latent = lambda batch_size, seed=None: tf.constant(LATENT[:batch_size, :2])
    gan = CoordinateGAN(generator, linear_critic(), n_critic=1, gp_weight=0.0, trace_penalty=1.0, seed=0)
    gan.compile(
        g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.0), run_eagerly=True
    )

    def mean_score():
        return float(np.mean(generator(LATENT[:, :2]).numpy() @ np.array([0.7, -0.4]) + 0.25))

    before = mean_score()
    g_loss, _, _ = gan.generator_step(3)
    assert float(g_loss) == pytest.approx(-before, abs=1e-6)
    assert mean_score() > before + 1e-3
    # the critic's plain fake term: its loss is D(fake) − D(real), and the estimate is real − fake
    fake = generator(LATENT[:, :2])
    d_loss, wasserstein, _, _ = gan.critic_step(tf.constant(REAL), fake)
    real_score = np.mean(REAL @ np.array([0.7, -0.4]) + 0.25)
    assert float(wasserstein) == pytest.approx(real_score - mean_score(), abs=1e-6)
    assert float(d_loss) == pytest.approx(mean_score() - real_score, abs=1e-6)
