"""Expressivity probe: how well a generator fits a clustered map of the latent square when told it."""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from qgan.evaluation.coverage import mode_coverage
from qgan.evaluation.targets import Target


def sector_targets(z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """The centre of the angular sector of each latent point: a map that clusters the square on a ring.

    Sector k holds the latent points whose angle atan2(z₂, z₁) is nearest to 2πk/K, and maps them
    to centre k (so it suits centres evenly spaced on a ring, in angle order, as targets.ring gives).

    Args:
        z: (N, 2) latent points.
        centers: (K, 2) mode centres.

    Returns:
        (N, 2) float32 target coordinates.
    """
    count = len(centers)
    angle = np.arctan2(z[:, 1], z[:, 0])
    sector = np.round(angle / (2 * np.pi / count)).astype(int) % count
    return np.asarray(centers, np.float32)[sector]


def outcome_loss(coordinates, probabilities, centers, balance_weight: float = 1.0):
    """Direct-fit loss of a mixture generator: outcome n is sent to centre n, with equal weights.

    mean_z (1/K) Σ_{n<K} ‖G_n(z) − c_n‖² plus balance_weight · KL(t ‖ q), where q is the batch's mean
    outcome distribution and t is uniform over the first K outcomes: an outcome that starves costs
    log(1/q_n), so every centre keeps its outcome. The assignment is fixed, not greedy: letting each
    outcome take its nearest centre collapses onto few.

    Args:
        coordinates: (batch, outcomes, 2) every outcome's coordinates.
        probabilities: (batch, outcomes) outcome probabilities (any normalisation).
        centers: (K, 2) mode centres.
        balance_weight: weight of the balance term.

    Returns:
        A scalar tensor.
    """
    outcomes = coordinates.shape[1]
    used = min(outcomes, centers.shape[0])
    squared = tf.reduce_sum(tf.square(coordinates[:, :used] - centers[:used]), axis=-1)
    distribution = tf.reduce_mean(probabilities / tf.reduce_sum(probabilities, axis=1, keepdims=True), axis=0)
    divergence = -tf.reduce_mean(tf.math.log(distribution[:used] * used + 1e-12))
    return tf.reduce_mean(squared) + balance_weight * divergence


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What a direct fit reached.

    Attributes:
        loss: final mean squared distance to the targets (plus the trace penalty).
        modes_captured: modes captured by fresh samples.
        high_quality_fraction: share of fresh samples within 3·std of a centre.
        kl_uniform: KL of the high-quality samples' mode histogram from uniform.
        trace_mean: mean Fock trace of the fresh samples (1 for a classical generator).
        trace_min: smallest Fock trace.
        seconds: wall time of the fit.
    """

    loss: float
    modes_captured: int
    high_quality_fraction: float
    kl_uniform: float
    trace_mean: float
    trace_min: float
    seconds: float


def fit_sector_map(
    generator,
    target: Target,
    steps: int = 3000,
    learning_rate: float = 1e-2,
    batch_size: int = 256,
    trace_penalty: float = 1.0,
    seed: int = 0,
    eval_samples: int = 2500,
    jit_compile: bool = True,
) -> FitResult:
    """Trains a generator by regression onto `sector_targets` (no critic), then measures its coverage.

    This bounds what adversarial training can reach: a generator that cannot fit clusters when
    each latent point's cluster is given cannot be expected to find them from a critic's signal.
    Adam runs at `learning_rate` for 70% of the steps and at a tenth of it for the rest. A mixture
    generator (heralded circuit, classical mixture) is fitted by `outcome_loss` instead: its
    outcomes, not its latent sectors, carry the clusters.

    Args:
        generator: a CoordinateGenerator with a 2-D latent space (plus the outcome column of a mixture).
        target: a ring target (its centres and std).
        steps: gradient steps.
        learning_rate: Adam learning rate.
        batch_size: latent points per step.
        trace_penalty: weight of mean(1 − trace) in the loss.
        seed: seed of the latent points.
        eval_samples: fresh samples for the final coverage.
        jit_compile: compile the step with XLA.

    Returns:
        The FitResult.
    """
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(generator.trainable_variables)
    rng = np.random.default_rng(seed)

    centers = tf.constant(target.centers, tf.float32)

    def step(z, goal):
        with tf.GradientTape() as tape:
            if generator.outcomes:
                coordinates, probabilities, trace = generator.mixture(z)
                loss = outcome_loss(coordinates, probabilities, centers)
            else:
                coordinates, trace = generator(z, return_trace=True)
                loss = tf.reduce_mean(tf.reduce_sum(tf.square(coordinates - goal), axis=1))
            loss += trace_penalty * tf.reduce_mean(1.0 - trace)
        optimizer.apply(tape.gradient(loss, generator.trainable_variables), generator.trainable_variables)
        return loss

    compiled = tf.function(step, autograph=False, jit_compile=jit_compile)
    started = time.time()
    loss = tf.constant(float("nan"))
    for index in range(steps):
        if index == int(0.7 * steps):
            optimizer.learning_rate.assign(0.1 * learning_rate)
        z = rng.uniform(-1.0, 1.0, (batch_size, generator.latent_dim)).astype(np.float32)
        loss = compiled(tf.constant(z), tf.constant(sector_targets(z[:, :2], target.centers)))
    samples, trace = generator.generate(eval_samples, chunk_size=250, seed=seed + 1)
    coverage = mode_coverage(samples, target.centers, target.std)
    return FitResult(
        loss=float(loss),
        modes_captured=coverage.modes_captured,
        high_quality_fraction=coverage.high_quality_fraction,
        kl_uniform=coverage.kl_uniform,
        trace_mean=float(np.mean(trace)),
        trace_min=float(np.min(trace)),
        seconds=time.time() - started,
    )


def _words(text: str, kind, flag: str) -> list:
    try:
        return [kind(word) for word in text.split(",")]
    except ValueError:
        message = f"expressivity.py: error: {flag} {text!r} is not allowed; give comma-separated values"
        raise SystemExit(message) from None


def main(argv=None, log=print) -> int:
    """Fits quantum and classical generators of several sizes to the ring's sector map; prints a table."""
    import argparse
    import json
    import os

    from qgan.evaluation.targets import ring
    from qgan.models.classical_generator import ClassicalGenerator
    from qgan.models.generator import QuantumGenerator
    from qgan.runtime.files import write_atomic
    from qgan.runtime.heap import freeze_imports

    freeze_imports()
    parser = argparse.ArgumentParser(
        prog="expressivity.py",
        description="Fit generators by regression to a map that sends each angular sector of the latent "
        "square to one mode of the ring, and report the coverage they reach (an upper bound for a GAN).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--layers", default="4,8", help="circuit depths, comma separated")
    parser.add_argument("--reupload", default="yes,no", help="latent re-uploading: yes, no or both")
    parser.add_argument(
        "--readout",
        default="expectation",
        help="circuit readouts, comma separated: expectation, heralded (a pnr ancilla; ⟨x⟩, ⟨p⟩ of mode 0)",
    )
    parser.add_argument(
        "--ancilla-offset", type=float, default=1.8, help="with the heralded readout: the ancilla's offset"
    )
    parser.add_argument("--cutoff", type=int, default=10, help="Fock cutoff")
    parser.add_argument(
        "--latent-scale", type=float, default=1.5, help="displacement per unit of latent noise"
    )
    parser.add_argument(
        "--classical-widths", default="5,16,64", help="MLP hidden widths (two equal layers); 'none' for none"
    )
    parser.add_argument("--steps", type=int, default=3000, help="gradient steps per fit")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and latent points")
    parser.add_argument(
        "--output-dir", default=os.path.join("results", "expressivity"), help="JSON report folder"
    )
    args = parser.parse_args(argv)
    reupload = [{"yes": True, "no": False}.get(word) for word in args.reupload.split(",")]
    if None in reupload:
        parser.error(f"--reupload {args.reupload!r} is not allowed; use yes, no or yes,no")
    readouts = args.readout.split(",")
    if not set(readouts) <= {"expectation", "heralded"}:
        parser.error(f"--readout {args.readout!r} is not allowed; use expectation, heralded or both")
    target = ring()
    models = []
    for readout in readouts:
        for layers in _words(args.layers, int, "--layers"):
            for upload in reupload:
                heralded = f", heralded ({args.cutoff} outcomes)" if readout == "heralded" else ""
                models.append(
                    (
                        f"quantum, {layers} layers{', re-uploading' if upload else ''}{heralded}",
                        lambda layers=layers, upload=upload, readout=readout: QuantumGenerator(
                            modes=2,
                            layers=layers,
                            cutoff=args.cutoff,
                            latent_scale=args.latent_scale,
                            reupload=upload,
                            seed=args.seed,
                            readout=readout,
                            ancilla_offset=args.ancilla_offset if readout == "heralded" else 0.0,
                        ),
                    )
                )
    widths = (
        [] if args.classical_widths == "none" else _words(args.classical_widths, int, "--classical-widths")
    )
    for width in widths:
        models.append(
            (
                f"classical MLP 2-{width}-{width}-2",
                lambda width=width: ClassicalGenerator(hidden_units=(width, width), seed=args.seed),
            )
        )
    records = []
    lines = [
        "| generator | parameters | modes | HQ % | KL | trace mean | trace min | fit loss | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, build in models:
        keras.utils.set_random_seed(args.seed)
        generator = build()
        parameters = generator.parameter_count()
        result = fit_sector_map(generator, target, steps=args.steps, seed=args.seed)
        records.append({"generator": label, "parameters": parameters, **dataclasses.asdict(result)})
        lines.append(
            f"| {label} | {parameters} | {result.modes_captured}/8 | "
            f"{100 * result.high_quality_fraction:.1f} | {result.kl_uniform:.3f} | {result.trace_mean:.4f} | "
            f"{result.trace_min:.4f} | {result.loss:.4f} | {result.seconds:.0f} |"
        )
        log(lines[-1])
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, time.strftime("expressivity-%Y%m%d-%H%M%S.json"))
    write_atomic(path, json.dumps({"arguments": vars(args), "fits": records}, indent=2) + "\n")
    log("\n" + "\n".join(lines) + f"\n\nwrote {path}")
    return 0
