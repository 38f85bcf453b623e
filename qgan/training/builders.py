"""What a run is built from its config: target, generator, compiled GAN, real data and checkpoint."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from qgan.evaluation import targets
from qgan.guard import GradientGuard
from qgan.models.circuit_layout import quantum_parameter_count
from qgan.models.classical_generator import (
    ClassicalGenerator,
    ClassicalMixtureGenerator,
    matching_hidden_units,
)
from qgan.models.critic import build_critic
from qgan.models.energy import local_scale
from qgan.models.gan import CoordinateGAN
from qgan.runtime.errors import first_line
from qgan.training.config import ConfigError, TrainConfig


def make_target(config: TrainConfig) -> targets.Target:
    """The target distribution a config asks for (raises targets.DataError for unusable files)."""
    if config.dataset == "ring":
        return targets.ring()
    if config.dataset == "grid":
        return targets.grid()
    return targets.from_file(
        config.data, config.centers, config.std, holdout_fraction=config.holdout_fraction(), seed=config.seed
    )


def build_generator(config: TrainConfig):
    """The generator a config asks for: the quantum circuit, or the classical MLP of about its size.

    A classical generator's size comes from the circuit's parameter count in closed form, so
    building one imports no Strawberry Fields.
    """
    if config.generator == "quantum":
        from qgan.models.generator import QuantumGenerator

        return QuantumGenerator(
            modes=config.modes,
            layers=config.layers,
            cutoff=config.cutoff,
            engine=config.engine,
            latent_scale=config.latent_scale,
            max_squeeze=config.max_squeeze,
            max_displacement=config.max_displacement,
            max_kerr=config.max_kerr,
            init_std=config.init_std,
            seed=config.seed,
            jit_compile=config.jit_compile,
            reupload=config.reupload,
            readout=config.readout,
            ancillas=config.ancillas,
            detector=config.detector,
            quadratures=config.quadratures,
            ancilla_offset=config.ancilla_offset,
            latent_distribution=config.latent_distribution,
            detector_efficiency=config.detector_efficiency,
            dark_counts=config.dark_counts,
            output_loss=config.output_loss,
            latent_output=config.latent_output,
            name="quantum_generator",
        )
    quantum_parameters = quantum_parameter_count(
        config.modes, config.layers, reupload=config.reupload, latent_output=config.latent_output
    )
    if config.generator == "classical-mixture":
        outcomes = config.mixture_outcomes()
        mixture_parameters = max(quantum_parameters - outcomes, 1)
        hidden_units = matching_hidden_units(mixture_parameters, config.modes + outcomes, 2)
        return ClassicalMixtureGenerator(
            latent_dim=config.modes,
            outcomes=outcomes,
            hidden_units=hidden_units,
            seed=config.seed,
            jit_compile=config.jit_compile,
            latent_distribution=config.latent_distribution,
            name="classical_mixture_generator",
        )
    hidden_units = matching_hidden_units(quantum_parameters, config.modes, 2)
    return ClassicalGenerator(
        latent_dim=config.modes,
        hidden_units=hidden_units,
        seed=config.seed,
        jit_compile=config.jit_compile,
        latent_distribution=config.latent_distribution,
        name="classical_generator",
    )


def build_gan(config: TrainConfig, run_eagerly: bool | None = None) -> CoordinateGAN:
    """The compiled CoordinateGAN described by a config.

    Args:
        config: the TrainConfig.
        run_eagerly: force eager steps; by default only engines that cannot run as graphs do.
    """
    generator = build_generator(config)
    if run_eagerly is None:
        run_eagerly = not generator.supports_graph
    critic = build_critic(config.critic_units, seed=config.seed + 100)
    scales = mmd_scales(make_target(config), config.seed) if config.mmd_weight else ()
    gan = CoordinateGAN(
        generator,
        critic,
        n_critic=config.n_critic,
        gp_weight=config.gp_weight,
        gp_target=config.gp_target,
        trace_penalty=config.trace_penalty,
        energy_weight=config.energy_weight,
        mmd_weight=config.mmd_weight,
        mmd_scales=scales,
        average_decay=config.average_decay,
        marginal_critic=config.marginal_critic,
        guard_options=config.guard_options(),
        seed=config.seed,
    )
    gan.compile(
        g_optimizer=keras.optimizers.Adam(config.g_lr, beta_1=config.g_beta1, beta_2=config.g_beta2),
        d_optimizer=keras.optimizers.Adam(config.d_lr, beta_1=config.d_beta1, beta_2=config.d_beta2),
        run_eagerly=run_eagerly,
        jit_compile=config.jit_compile and not run_eagerly,
    )
    return gan


MMD_SCALE_FACTORS = (1.0, 2.0, 4.0, 8.0)
LOCAL_SCALE_POINTS = 2000


def mmd_scales(target: targets.Target, seed: int) -> tuple[float, ...]:
    """The local MMD's bandwidths: MMD_SCALE_FACTORS times the data's local scale (energy.local_scale).

    The scale is the median distance to the 10th nearest neighbour among 2,000 real points, drawn
    fresh from a mixture or without replacement from a file's training points: it follows the
    data's resolution and knows nothing of its modes.
    """
    rng = np.random.default_rng((seed, 2**41))
    if target.points is not None:
        chosen = rng.permutation(len(target.points))[:LOCAL_SCALE_POINTS]
        points = target.points[chosen]
    else:
        points = target.sample(LOCAL_SCALE_POINTS, seed=(seed, 2**41))
    scale = local_scale(points)
    return tuple(factor * scale for factor in MMD_SCALE_FACTORS)


def real_dataset(target: targets.Target, config: TrainConfig, start_step: int = 0) -> tf.data.Dataset:
    """The real batches of steps start_step … steps−1, each n_critic·batch_size points.

    Batch k is target.sample(…, seed=(seed, k)): a function of the step alone, so a resumed
    run sees exactly the batches the uninterrupted run would have seen.
    """
    size = config.n_critic * config.batch_size

    def batch(step):
        return target.sample(size, seed=(config.seed, int(step)))

    def load(step):
        points = tf.numpy_function(batch, [step], tf.float32)
        return tf.ensure_shape(points, (size, 2))

    steps = tf.data.Dataset.range(start_step, config.steps)
    return steps.map(load, num_parallel_calls=1, deterministic=True).prefetch(2)


def decaying_rates(gan: CoordinateGAN, config: TrainConfig) -> list:
    """(optimizer, base rate, guard) of each player that --lr-schedule decays (--lr-schedule-players)."""
    rates = [(gan.g_optimizer, config.g_lr, gan.generator_guard)]
    if config.lr_schedule_players == "both":
        rates.append((gan.d_optimizer, config.d_lr, gan.critic_guard))
    return rates


def make_checkpoint(
    gan: CoordinateGAN,
    step: tf.Variable,
    running_means: bool = True,
    branch_budgets: bool = True,
    average: bool = True,
) -> tf.train.Checkpoint:
    """The whole training state: both players' weights and optimizers, guards, noise RNG, step.

    With running_means it also holds the metric means since the last evaluation, so a run resumed
    between two evaluations writes the rows of an uninterrupted one. With branch_budgets it holds
    which branch each guard's next healthy step takes, so a resumed run rounds as the
    uninterrupted one did. With average it holds the generator's weight average (when the GAN has
    one). A checkpoint written before any of them was saved is restored without it.
    """
    means = {
        f"{name}_{index}": variable.value
        for name, tracker in gan.trackers.items()
        for index, variable in enumerate(tracker.variables)
    }
    guards = {
        f"{prefix}_{name}": variable
        for prefix, guard in (("critic_guard", gan.critic_guard), ("generator_guard", gan.generator_guard))
        for name, variable in guard.state_variables().items()
        if branch_budgets or name != GradientGuard.BRANCH_BUDGET
    }
    return tf.train.Checkpoint(
        generator=gan.generator,
        critic=gan.critic,
        g_optimizer=gan.g_optimizer,
        d_optimizer=gan.d_optimizer,
        noise_seed=gan.noise_seed.state,
        step=step,
        **({"running_means": tf.train.Checkpoint(**means)} if running_means else {}),
        **guards,
        **(
            {"generator_average": tf.train.Checkpoint(**gan.weight_average.state_variables())}
            if average and gan.weight_average is not None
            else {}
        ),
    )


def restore_checkpoint(gan: CoordinateGAN, step: tf.Variable, path: str) -> None:
    """Restores a checkpoint of make_checkpoint into `gan` and `step`, with or without running means.

    Raises:
        AssertionError, ValueError or tf.errors.OpError: a checkpoint that does not fit this GAN.
    """
    saved = [name for name, _ in tf.train.list_variables(path)]
    with_means = any(name.startswith("running_means/") for name in saved)
    with_budgets = any(name.split("/")[0].endswith(GradientGuard.BRANCH_BUDGET) for name in saved)
    with_average = any(name.startswith("generator_average/") for name in saved)
    checkpoint = make_checkpoint(
        gan, step, running_means=with_means, branch_budgets=with_budgets, average=with_average
    )
    checkpoint.restore(path).assert_existing_objects_matched()


CHECKPOINT_ERRORS = (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError, OSError)


def restore_newest_readable(gan: CoordinateGAN, step: tf.Variable, manager, run_name: str, log) -> str:
    """Restores the newest checkpoint of `manager` that can be read, saying which it skipped and why.

    A checkpoint cut short by a crash during its save or a full disk is skipped for the one before
    it; every variable is assigned again by the checkpoint that is restored.

    Returns:
        The path restored.

    Raises:
        ConfigError: no checkpoint can be read (or none fits this GAN); nothing was changed on disk.
    """
    skipped = []
    for path in reversed(manager.checkpoints):
        try:
            restore_checkpoint(gan, step, path)
        except CHECKPOINT_ERRORS as error:
            skipped.append((os.path.basename(path), first_line(error)))
            continue
        for name, reason in skipped:
            log(f"qgan: checkpoint {name} cannot be read ({reason}); resuming from {os.path.basename(path)}")
        return path
    name, reason = skipped[0] if skipped else ("(none)", "no checkpoint listed")
    raise ConfigError(
        f"--run-name {run_name!r}: none of its {len(skipped)} checkpoints can be restored (the newest, "
        f"{name}: {reason}); choose another --run-name"
    )


def generator_description(config: TrainConfig, generator) -> str:
    if isinstance(generator, ClassicalGenerator):
        widths = "-".join(str(width) for width in (generator.latent_dim, *generator.hidden_units, 2))
        return f"classical MLP {widths} ({generator.parameter_count()} parameters)"
    if isinstance(generator, ClassicalMixtureGenerator):
        widths = "-".join(str(width) for width in (generator.continuous_dim, *generator.hidden_units, 2))
        return (
            f"classical mixture of {generator.outcomes} outcomes, MLP {widths} "
            f"({generator.parameter_count()} parameters)"
        )
    reupload = ", re-uploading" if config.reupload else ""
    readout = ""
    if config.readout == "heralded":
        readout = (
            f", heralded on {config.ancillas} {config.detector} ancilla{'s' if config.ancillas > 1 else ''} "
            f"({generator.outcomes} outcomes, {config.quadratures})"
        )
    return (
        f"{config.engine} engine, {config.modes} modes, {config.layers} layers, cutoff {config.cutoff}"
        f"{reupload}{readout} ({generator.parameter_count()} parameters)"
    )
