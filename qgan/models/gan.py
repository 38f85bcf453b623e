"""CoordinateGAN: a Keras WGAN-GP model whose steps go through gradient guards."""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from qgan.guard import GradientGuard
from qgan.models.coordinate_generator import born_rule_samples
from qgan.models.critic import gradient_penalty
from qgan.models.ema import WeightAverage
from qgan.models.energy import mixture_energy_distance, mixture_local_mmd
from qgan.runtime.direct_call import DirectCall


def outcome_weights(probabilities):
    """Each row's outcome probabilities divided by their sum (the trace), for the Born-rule average."""
    total = tf.reduce_sum(probabilities, axis=1, keepdims=True)
    return probabilities / tf.maximum(total, keras.config.epsilon())


def entropy(distribution):
    """Shannon entropy (nats) of a probability vector; zero entries contribute 0."""
    safe = tf.where(distribution > 0, distribution, tf.ones_like(distribution))
    return -tf.reduce_sum(distribution * tf.math.log(safe))


class MinMetric(keras.metrics.Metric):
    """The smallest value seen since the last reset."""

    def __init__(self, name="min", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smallest = self.add_variable(
            shape=(), initializer=keras.initializers.Constant(float("inf")), name="smallest"
        )

    def update_state(self, values):
        self.smallest.assign(tf.minimum(self.smallest, tf.reduce_min(tf.cast(values, self.dtype))))

    def result(self):
        return tf.convert_to_tensor(self.smallest)

    def reset_state(self):
        self.smallest.assign(float("inf"))


class CoordinateGAN(keras.Model):
    """Wasserstein GAN with gradient penalty for a generator of 2-D coordinates.

    Each train_step receives n_critic·batch real samples: it takes n_critic critic steps, one per
    slice, each on its own fresh fake samples, then one generator step. The generator does not
    change during the critic steps, so all their fake samples come from one generator call. Both
    players' updates go through a GradientGuard, so a NaN/Inf loss or gradient never reaches the
    weights.

    A mixture generator (one with `outcomes` > 0, e.g. a heralded circuit) is trained on the
    exact average over its outcomes, −E_z Σ_n w_n(z)·D(G_n(z)) with w_n = p_n/Σ_m p_m: no
    sampling of outcomes in the generator's gradient, so no REINFORCE.

    Args:
        generator: a layer with `sample_latent(batch, seed)` and
            `call(z, return_trace=True)` returning (coordinates, Fock trace).
        critic: a Keras model mapping coordinates to scores.
        n_critic: critic steps per generator step.
        gp_weight: weight of the gradient penalty in the critic loss.
        gp_target: the gradient norm the penalty pulls towards: 1 for WGAN-GP, 0 for the zero-centred
            penalty (a damped critic: the players settle instead of circling the equilibrium).
        trace_penalty: weight of mean(1 − trace) in the generator loss (keeps the state in the cutoff).
        energy_weight: weight of the squared energy distance between the generator's batch (exact
            over outcomes) and the step's real rows in the generator loss (0 = off): a term whose
            gradient sees each mode's width where the critic's vanishes.
        mmd_weight: weight of the squared local MMD (mixture_local_mmd, bandwidths mmd_scales) between
            the generator's batch and the step's real rows in the generator loss (0 = off).
        mmd_scales: the local MMD's kernel bandwidths.
        average_decay: decay of the exponential moving average of the generator's weights that
            `averaged()` puts in place for evaluating and saving (0 = no average).
        marginal_critic: with a mixture generator, score the critic's fake term as the exact average
            over outcomes, Σ_n p_n·D(G_n(z)), instead of over Born-rule samples (the gradient penalty
            still uses the samples).
        guard_options: keyword arguments of both players' GradientGuards (policy, clipping, recovery).
        seed: seed of the latent noise and the penalty's interpolation weights.
    """

    def __init__(
        self,
        generator,
        critic,
        n_critic: int = 5,
        gp_weight: float = 10.0,
        gp_target: float = 1.0,
        trace_penalty: float = 0.0,
        energy_weight: float = 0.0,
        mmd_weight: float = 0.0,
        mmd_scales: tuple = (),
        average_decay: float = 0.0,
        marginal_critic: bool = False,
        guard_options: dict | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.critic = critic
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.gp_target = gp_target
        self.trace_penalty = trace_penalty
        self.energy_weight = energy_weight
        self.mmd_weight = mmd_weight
        self.mmd_scales = tuple(float(scale) for scale in mmd_scales)
        if mmd_weight and not self.mmd_scales:
            raise ValueError("mmd_weight > 0 needs mmd_scales")
        self.average_decay = average_decay
        self.weight_average = None
        self.marginal_critic = marginal_critic and bool(generator.outcomes)
        self.noise_seed = keras.random.SeedGenerator(seed)
        guard_options = dict(guard_options or {})
        self.critic_guard = GradientGuard(**guard_options, name="critic_guard")
        self.generator_guard = GradientGuard(**guard_options, name="generator_guard")
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "d_loss",
                "g_loss",
                "gp",
                "wasserstein",
                "d_grad_norm",
                "g_grad_norm",
                "trace_mean",
            )
        }
        self.trackers["trace_min"] = MinMetric(name="trace_min")
        if generator.outcomes:
            self.trackers["outcome_entropy"] = keras.metrics.Mean(name="outcome_entropy")
        if energy_weight:
            self.trackers["energy_distance"] = keras.metrics.Mean(name="energy_distance")
        if mmd_weight:
            self.trackers["local_mmd"] = keras.metrics.Mean(name="local_mmd")

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        """Sets both optimizers and builds them and the guards on all their variables.

        Args:
            g_optimizer: Keras optimizer of the generator.
            d_optimizer: Keras optimizer of the critic.
            **kwargs: passed to keras.Model.compile (e.g. run_eagerly).
        """
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.critic_guard.build(d_optimizer, self.critic.trainable_variables)
        self.generator_guard.build(g_optimizer, self.generator.trainable_variables)
        if self.average_decay:
            self.weight_average = WeightAverage(
                self.generator.trainable_variables, self.average_decay, name="generator_average"
            )
        self.built = True

    @contextlib.contextmanager
    def averaged(self):
        """Within the block the generator holds its averaged weights (its own, without an average)."""
        if self.weight_average is None:
            yield self.generator
            return
        with self.weight_average.applied():
            yield self.generator

    def make_train_function(self, force=False):
        """Keras' train function; under XLA, the critic and generator phases as two compiled programs.

        Keras nests its XLA step in an uncompiled graph that reads the iterator, and TensorFlow's
        graph optimiser then rewrites the whole step before XLA compiles it: about 3 s of the default
        run's first step and 4 ms of every later one, for nothing the step needs. Compiling the two
        phases apart gives the same numbers and the same compile time, and lowers the compiler's
        peak memory (the default run's from 1.65 to 1.51 GiB).
        """
        if not self.jit_compile or self.run_eagerly or self.steps_per_execution != 1:
            return super().make_train_function(force)
        if self.train_function is None or force:
            critic = DirectCall(tf.function(self.critic_phase, jit_compile=True, autograph=False))
            generator = DirectCall(tf.function(self.generator_phase, jit_compile=True, autograph=False))

            def function(iterator):
                data = next(iterator)
                critic(data)
                return generator(data)

            self.train_function = function
        return self.train_function

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, z, training=False):
        return self.generator(z)

    def marginal_score(self, coordinates, weights):
        """E_z Σ_n w_n·D(G_n(z)) of every outcome's coordinates (batch, outcomes, d) and weights."""
        flat = tf.reshape(coordinates, (-1, coordinates.shape[-1]))
        scores = tf.reshape(self.critic(flat, training=True), tf.shape(weights))
        return tf.reduce_mean(tf.reduce_sum(weights * scores, axis=1))

    def critic_step(self, real, fake, fake_mixture=None):
        """One critic update on real and fake samples; returns the losses and the guard report.

        Args:
            real: (batch, d) real samples.
            fake: (batch, d) generated samples (for the gradient penalty, and for the fake term
                unless fake_mixture is given).
            fake_mixture: optional (coordinates (batch, outcomes, d), weights (batch, outcomes)) whose
                weighted score is the fake term.
        """
        with tf.GradientTape() as tape:
            if fake_mixture is None:
                fake_score = tf.reduce_mean(self.critic(fake, training=True))
            else:
                fake_score = self.marginal_score(*fake_mixture)
            wasserstein = tf.reduce_mean(self.critic(real, training=True)) - fake_score
            penalty = gradient_penalty(self.critic, real, fake, target=self.gp_target, seed=self.noise_seed)
            d_loss = -wasserstein + self.gp_weight * penalty
        variables = self.critic.trainable_variables
        grads = tape.gradient(d_loss, variables)
        report = self.critic_guard.apply_gradients(self.d_optimizer, grads, variables, loss=d_loss)
        return d_loss, wasserstein, penalty, report

    def generator_step(self, batch_size, real=None):
        """One generator update; returns the loss, the per-sample traces and the guard report.

        Args:
            batch_size: latent rows of the step.
            real: the step's real rows, for the energy-distance term (needed when energy_weight > 0).
        """
        z = self.generator.sample_latent(batch_size, seed=self.noise_seed)
        variables = self.generator.trainable_variables
        weights = energy = mmd = None
        with tf.GradientTape() as tape:
            if self.generator.outcomes:
                coordinates, probabilities, trace = self.generator.mixture(z)
                weights = outcome_weights(probabilities)
                g_loss = -self.marginal_score(coordinates, weights)
                fake_mixture = (coordinates, weights)
            else:
                fake, trace = self.generator(z, return_trace=True)
                g_loss = -tf.reduce_mean(self.critic(fake, training=True))
                fake_mixture = (fake[:, None, :], tf.ones_like(fake[:, :1]))
            if self.energy_weight:
                energy = mixture_energy_distance(*fake_mixture, real)
                g_loss += self.energy_weight * energy
            if self.mmd_weight:
                mmd = mixture_local_mmd(*fake_mixture, real, self.mmd_scales)
                g_loss += self.mmd_weight * mmd
            g_loss += self.trace_penalty * tf.reduce_mean(1.0 - trace)
        grads = tape.gradient(g_loss, variables)
        report = self.generator_guard.apply_gradients(self.g_optimizer, grads, variables, loss=g_loss)
        if weights is not None:
            self.trackers["outcome_entropy"].update_state(entropy(tf.reduce_mean(weights, axis=0)))
        if energy is not None:
            self.trackers["energy_distance"].update_state(energy)
        if mmd is not None:
            self.trackers["local_mmd"].update_state(mmd)
        if self.weight_average is not None:
            with tf.control_dependencies([report["recovered"]]):
                self.weight_average.update()
        return g_loss, trace, report

    def critic_fakes(self, count):
        """Fake samples for `count` critic rows, and (coordinates, weights) of every outcome when marginal."""
        z = self.generator.sample_latent(count, seed=self.noise_seed)
        if not self.generator.outcomes:
            return self.generator(z), None
        coordinates, probabilities, _ = self.generator.mixture(z)
        fake, _ = born_rule_samples(coordinates, probabilities, z)
        return fake, (coordinates, outcome_weights(probabilities)) if self.marginal_critic else None

    def _batch_size(self, data):
        return data.shape[0] // self.n_critic if data.shape[0] else tf.shape(data)[0] // self.n_critic

    def critic_phase(self, data):
        """The n_critic critic steps of a train_step, on n_critic·batch real rows."""
        batch_size = self._batch_size(data)
        fakes, mixture = self.critic_fakes(self.n_critic * batch_size)

        def by_step(values):
            """Rows of n_critic·batch values as (n_critic, batch, …): the slice of each critic step."""
            return tf.reshape(values, tf.concat([[self.n_critic, batch_size], tf.shape(values)[1:]], 0))

        reals, fakes = by_step(data), by_step(fakes)
        mixtures = None if mixture is None else tuple(by_step(part) for part in mixture)

        def critic_iteration(index):
            fake_mixture = None if mixtures is None else tuple(part[index] for part in mixtures)
            d_loss, wasserstein, penalty, d_report = self.critic_step(
                reals[index], fakes[index], fake_mixture
            )
            self.trackers["d_loss"].update_state(d_loss)
            self.trackers["wasserstein"].update_state(wasserstein)
            self.trackers["gp"].update_state(penalty)
            self.trackers["d_grad_norm"].update_state(d_report["global_norm"])
            return (index + 1,)

        # one traced critic step, run n_critic times: the compiled graph holds one copy
        tf.while_loop(lambda index: index < self.n_critic, critic_iteration, (tf.constant(0),))

    def generator_phase(self, data):
        """The generator step of a train_step (data gives only the batch size); returns the logs."""
        batch_size = self._batch_size(data)
        g_loss, trace, g_report = self.generator_step(batch_size, real=data[:batch_size])
        self.trackers["g_loss"].update_state(g_loss)
        self.trackers["g_grad_norm"].update_state(g_report["global_norm"])
        self.trackers["trace_mean"].update_state(trace)
        self.trackers["trace_min"].update_state(trace)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        for prefix, guard in (("d", self.critic_guard), ("g", self.generator_guard)):
            for name, total in guard.totals().items():
                logs[f"{prefix}_{name}"] = total
        return logs

    def train_step(self, data):
        self.critic_phase(data)
        return self.generator_phase(data)
