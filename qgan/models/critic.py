"""The Wasserstein critic and its gradient penalty (WGAN-GP)."""

from __future__ import annotations

import keras
import tensorflow as tf

from qgan.runtime import noise

GRADIENT_NORM_EPSILON = 1e-10


def build_critic(units=(64, 64), input_dim: int = 2, negative_slope: float = 0.2, seed=None) -> keras.Model:
    """An MLP critic: Dense layers with LeakyReLU, then one linear output (no sigmoid).

    Args:
        units: widths of the hidden layers.
        input_dim: dimension of the samples.
        negative_slope: LeakyReLU slope for negative inputs.
        seed: seed of the kernel initialisers.

    Returns:
        A keras.Model mapping (batch, input_dim) to (batch, 1) scores.
    """
    inputs = keras.Input(shape=(input_dim,), name="samples")
    hidden = inputs
    for index, width in enumerate(units):
        initializer = keras.initializers.GlorotUniform(seed=None if seed is None else seed + index)
        hidden = keras.layers.Dense(width, kernel_initializer=initializer, name=f"dense_{index}")(hidden)
        hidden = keras.layers.LeakyReLU(negative_slope=negative_slope, name=f"leaky_relu_{index}")(hidden)
    initializer = keras.initializers.GlorotUniform(seed=None if seed is None else seed + len(units))
    outputs = keras.layers.Dense(1, kernel_initializer=initializer, name="score")(hidden)
    return keras.Model(inputs, outputs, name="critic")


def gradient_penalty(critic, real, fake, target: float = 1.0, one_sided: bool = False, seed=None):
    """Unweighted gradient penalty of a critic on random interpolates of real and fake samples.

    x̂ = α·real + (1−α)·fake with α ~ U[0, 1] per sample; the penalty is the mean over the batch
    of (‖∇ₓ critic(x̂)‖ − target)², or of max(0, ‖∇‖ − target)² when one_sided, the norm taken
    as sqrt(Σg² + 1e-10) so that its gradient stays finite where ∇ = 0.

    Args:
        critic: callable mapping (batch, d) samples to (batch, 1) scores.
        real: (batch, d) real samples.
        fake: (batch, d) generated samples.
        target: the gradient norm the penalty pulls towards.
        one_sided: penalise only norms above the target.
        seed: seed (or keras SeedGenerator) of the interpolation weights.

    Returns:
        A scalar tensor.
    """
    real = tf.convert_to_tensor(real)
    fake = tf.cast(fake, real.dtype)
    alpha = noise.uniform((tf.shape(real)[0], 1), dtype=real.dtype, seed=seed)
    interpolates = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = critic(interpolates, training=True)
    gradients = tape.gradient(scores, interpolates)
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=1) + GRADIENT_NORM_EPSILON)
    excess = norms - target
    if one_sided:
        excess = tf.nn.relu(excess)
    return tf.reduce_mean(tf.square(excess))
