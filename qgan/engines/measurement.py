"""Heralding: outcome probabilities and conditional quadrature means of a ket measured on ancilla modes."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from qgan.engines.detectors import Detector, detector_matrix

# Probabilities below this count as zero when dividing by them (|⟨a⟩_n·p_n| ≤ p_n·√cutoff keeps the
# quotient bounded; float32 squares of it stay normal in the gradient).
PROBABILITY_FLOOR = 1e-12


@dataclasses.dataclass(frozen=True)
class HeraldedOutput:
    """Per sample and per detector outcome: its probability and the conditional quadrature means.

    Attributes:
        probabilities: (batch, outcomes) ‖(⟨n| ⊗ 1)ψ‖² summed over the photon-number patterns of each
            outcome; they sum to the trace, not to 1.
        x_means: (batch, outcomes, output modes) ⟨x⟩ of the state conditioned on the outcome (ħ = 2),
            i.e. divided by the outcome's probability.
        p_means: (batch, outcomes, output modes) ⟨p⟩ of the conditional state.
        trace: (batch,) norm of the truncated state before the measurement.
    """

    probabilities: tf.Tensor
    x_means: tf.Tensor
    p_means: tf.Tensor
    trace: tf.Tensor


def outcome_count(cutoff: int, ancillas: int, detector) -> int:
    """How many outcomes `ancillas` detectors can give: cutoff^K counts, or 2^K click patterns."""
    return as_detector(detector).outcomes(cutoff) ** ancillas


def as_detector(detector) -> Detector:
    """A Detector, from one or from its kind's name ("pnr", "threshold": the ideal detector)."""
    return detector if isinstance(detector, Detector) else Detector(detector)


def heralded_moments(ket, output_modes, ancilla_modes, detector="pnr") -> HeraldedOutput:
    """Measures the ancillas of a batched ket and reads the conditional means of the output modes.

    Every detector model is a POVM diagonal in the ancillas' Fock basis, Π_k = Σ_n D[n, k] |n⟩⟨n|
    with D = detectors.detector_matrix. So p_k = Σ_n D[n, k] ⟨ψ|Π_n|ψ⟩ and the conditional
    ⟨a_i⟩_k = Σ_n D[n, k] ⟨ψ|Π_n a_i|ψ⟩ / p_k are exact sums over the pure state's amplitudes, no
    density matrix needed; ⟨x_i⟩_k = 2 Re⟨a_i⟩_k and ⟨p_i⟩_k = 2 Im⟨a_i⟩_k (ħ = 2).

    Args:
        ket: complex tensor (batch, cutoff, …, cutoff), one axis per mode.
        output_modes: modes whose conditional quadrature means are read.
        ancilla_modes: measured modes (none of them in output_modes).
        detector: a detectors.Detector, or "pnr" / "threshold" for the ideal one.

    Returns:
        The HeraldedOutput, differentiable with respect to the ket.
    """
    modes = ket.shape.rank - 1
    cutoff = ket.shape[-1]
    output_modes, ancilla_modes = tuple(output_modes), tuple(ancilla_modes)
    if set(output_modes) & set(ancilla_modes):
        raise ValueError(f"modes {sorted(set(output_modes) & set(ancilla_modes))} are both read and measured")
    real_dtype = tf.float64 if ket.dtype == tf.complex128 else tf.float32
    groups = tf.constant(detector_matrix(cutoff, len(ancilla_modes), as_detector(detector)), real_dtype)
    sqrt_n = tf.constant(np.sqrt(np.arange(1, cutoff)), ket.dtype)[:, None, None]
    patterns = cutoff ** len(ancilla_modes)
    probabilities, lowered_overlaps = None, []
    for mode in output_modes:
        rest = [other for other in range(modes) if other != mode and other not in ancilla_modes]
        order = [0, mode + 1, *(other + 1 for other in rest), *(ancilla + 1 for ancilla in ancilla_modes)]
        moved = tf.reshape(tf.transpose(ket, order), (-1, cutoff, cutoff ** len(rest), patterns))
        if probabilities is None:
            magnitude = tf.math.real(moved) ** 2 + tf.math.imag(moved) ** 2
            probabilities = tf.reduce_sum(magnitude, axis=(1, 2)) @ groups
        overlap = tf.reduce_sum(tf.math.conj(moved[:, :-1]) * moved[:, 1:] * sqrt_n, axis=(1, 2))
        lowered_overlaps.append(overlap)
    overlaps = tf.stack(lowered_overlaps, axis=-1)  # (batch, patterns, output modes): ⟨ψ|Π a_i|ψ⟩ per pattern
    grouped_real = tf.einsum("bpi,po->boi", tf.math.real(overlaps), groups)
    grouped_imag = tf.einsum("bpi,po->boi", tf.math.imag(overlaps), groups)
    safe = tf.maximum(probabilities, PROBABILITY_FLOOR)[..., None]
    return HeraldedOutput(
        probabilities=probabilities,
        x_means=2.0 * grouped_real / safe,
        p_means=2.0 * grouped_imag / safe,
        trace=tf.reduce_sum(probabilities, axis=1),
    )
