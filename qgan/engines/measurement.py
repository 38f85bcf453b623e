"""Heralding: outcome probabilities and conditional quadrature means of a ket measured on ancilla modes."""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import tensorflow as tf

DETECTORS = ("pnr", "threshold")
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


def outcome_count(cutoff: int, ancillas: int, detector: str) -> int:
    """How many outcomes `ancillas` detectors can give: cutoff^K photon-number patterns, or 2^K clicks."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; allowed: {', '.join(DETECTORS)}")
    return cutoff**ancillas if detector == "pnr" else 2**ancillas


@functools.cache
def outcome_groups(cutoff: int, ancillas: int, detector: str) -> np.ndarray:
    """0/1 matrix (cutoff^K, outcomes): which photon-number pattern of the ancillas gives which outcome.

    Patterns are ordered as np.ndindex((cutoff,) * K). A photon-number-resolving detector reports the
    pattern itself; a threshold detector reports per ancilla only "no photon" (0) or "click" (1),
    and outcome Σ_k click_k·2^(K−1−k).
    """
    groups = np.zeros((cutoff**ancillas, outcome_count(cutoff, ancillas, detector)))
    for index, pattern in enumerate(itertools.product(range(cutoff), repeat=ancillas)):
        if detector == "pnr":
            groups[index, index] = 1.0
        else:
            clicks = [int(count > 0) for count in pattern]
            groups[index, int("".join(map(str, clicks)) or "0", 2)] = 1.0
    return groups


def heralded_moments(ket, output_modes, ancilla_modes, detector: str = "pnr") -> HeraldedOutput:
    """Measures the ancillas of a batched ket and reads the conditional means of the output modes.

    For outcome n with projector Π_n on the ancillas, p_n = ⟨ψ|Π_n|ψ⟩ and the conditional
    ⟨a_i⟩_n = ⟨ψ|Π_n a_i|ψ⟩ / p_n, so ⟨x_i⟩_n = 2 Re⟨a_i⟩_n and ⟨p_i⟩_n = 2 Im⟨a_i⟩_n (ħ = 2).
    A threshold "click" is the sum of every pattern with photons, so its conditional state is mixed.

    Args:
        ket: complex tensor (batch, cutoff, …, cutoff), one axis per mode.
        output_modes: modes whose conditional quadrature means are read.
        ancilla_modes: measured modes (none of them in output_modes).
        detector: "pnr" (photon-number resolving) or "threshold" (click / no click).

    Returns:
        The HeraldedOutput, differentiable with respect to the ket.
    """
    modes = ket.shape.rank - 1
    cutoff = ket.shape[-1]
    output_modes, ancilla_modes = tuple(output_modes), tuple(ancilla_modes)
    if set(output_modes) & set(ancilla_modes):
        raise ValueError(f"modes {sorted(set(output_modes) & set(ancilla_modes))} are both read and measured")
    real_dtype = tf.float64 if ket.dtype == tf.complex128 else tf.float32
    groups = tf.constant(outcome_groups(cutoff, len(ancilla_modes), detector), real_dtype)
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
