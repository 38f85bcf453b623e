"""Truncated Fock-basis matrices of CV gates, built from TensorFlow ops and batched over parameters."""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf


def _real_dtype(dtype: tf.DType) -> tf.DType:
    return tf.float64 if dtype == tf.complex128 else tf.float32


def _as_real(value, dtype: tf.DType) -> tf.Tensor:
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return tf.cast(value, _real_dtype(dtype))
    return tf.convert_to_tensor(np.asarray(value, np.float64), _real_dtype(dtype))


# Gate matrices are built in complex128 from closed forms (a few vectorised ops each, whatever the
# cutoff, so compiled graphs stay small) and cast to the dtype asked for.
_WIDE = tf.complex128


def _powers(base: tf.Tensor, count: int) -> tf.Tensor:
    """[1, base, base², …] of length count along a new last axis, by repeated doubling (exact at 0)."""
    powers = tf.stack([tf.ones_like(base), base], axis=-1)
    square = base
    while powers.shape[-1] < count:
        square = square * square
        powers = tf.concat([powers, powers * square[..., None]], axis=-1)
    return powers[..., :count]


@functools.cache
def _displacement_tables(cutoff: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of α^(m−k) at [m, k] (cutoff for "zero" when k > m), 1/i!, and √(m!) as float64."""
    m, k = np.meshgrid(np.arange(cutoff), np.arange(cutoff), indexing="ij")
    index = np.where(m >= k, m - k, cutoff)
    factorials = np.array([math.factorial(i) for i in range(cutoff)], np.float64)
    return index, 1.0 / factorials, np.sqrt(factorials)


@functools.cache
def _squeezing_tables(cutoff: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of c^j/j! at [m, k] with m = k + 2j (half for "zero" otherwise), and √(m!/k!) there."""
    half = cutoff // 2 + 1
    m, k = np.meshgrid(np.arange(cutoff), np.arange(cutoff), indexing="ij")
    even = (m >= k) & ((m - k) % 2 == 0)
    index = np.where(even, (m - k) // 2, half)
    log_factorial = np.array([math.lgamma(i + 1) for i in range(cutoff)])
    ratio = np.where(even, np.exp(0.5 * (log_factorial[m] - log_factorial[k])), 0.0)
    return index, ratio


def _scaled_powers(base: tf.Tensor, count: int) -> tf.Tensor:
    """[base^j / j!] for j < count, with one zero appended (the gather target of "no entry")."""
    _, inverse_factorials, _ = _displacement_tables(count)
    scaled = _powers(base, count) * tf.constant(inverse_factorials, _WIDE)
    return tf.concat([scaled, tf.zeros_like(scaled[..., :1])], axis=-1)


def _place(values: tf.Tensor, index: np.ndarray) -> tf.Tensor:
    """values[..., index] for a constant index array, as one contraction with a one-hot table."""
    table = tf.constant(np.eye(values.shape[-1])[index], _WIDE)  # index.shape + (len(values),)
    return tf.tensordot(values, table, axes=[[-1], [table.shape.rank - 1]])


def _alpha(r, phi):
    r, phi = _as_real(r, tf.complex128), _as_real(phi, tf.complex128)
    return r, tf.complex(r * tf.cos(phi), r * tf.sin(phi))


def coherent_state(r, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Amplitudes e^{-|α|²/2} α^n / √n! of the coherent state α = r·e^{iφ}, n < cutoff.

    Args:
        r: displacement magnitude, any shape (broadcast with phi).
        phi: displacement phase.
        cutoff: number of Fock levels kept.
        dtype: complex dtype of the result.

    Returns:
        Tensor of shape broadcast(r, phi).shape + (cutoff,).
    """
    r, alpha = _alpha(r, phi)
    _, _, sqrt_factorials = _displacement_tables(cutoff)
    envelope = tf.cast(tf.exp(-0.5 * r * r), _WIDE)[..., None]
    return tf.cast(envelope * _powers(alpha, cutoff) / tf.constant(sqrt_factorials, _WIDE), dtype)


def displacement_matrix(r, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Matrix ⟨m|D(α)|n⟩, m, n < cutoff, of D(α) = exp(α a† − α* a) with α = r·e^{iφ}.

    From D = e^{−|α|²/2} e^{α a†} e^{−α* a}:
    ⟨m|D|n⟩ = e^{−|α|²/2} √(m! n!) Σ_{k ≤ min(m, n)} α^(m−k)/(m−k)! · (−α*)^(n−k)/(n−k)! / k!,
    one product of two triangular matrices gathered from the powers of α and −α*. Every entry is
    the exact matrix element of the untruncated operator.

    Returns:
        Tensor of shape broadcast(r, phi).shape + (cutoff, cutoff), indexed [..., m, n].
    """
    r, alpha = _alpha(r, phi)
    index, inverse_factorials, sqrt_factorials = _displacement_tables(cutoff)
    raising = _place(_scaled_powers(alpha, cutoff), index)  # [.., m, k]: α^(m−k)/(m−k)!
    lowering = _place(_scaled_powers(-tf.math.conj(alpha), cutoff), index)  # [.., n, k]
    weights = tf.constant(inverse_factorials, _WIDE)
    product = tf.linalg.matmul(raising * weights, lowering, transpose_b=True)
    scale = tf.constant(np.outer(sqrt_factorials, sqrt_factorials), _WIDE)
    envelope = tf.cast(tf.exp(-0.5 * r * r), _WIDE)[..., None, None]
    return tf.cast(envelope * scale * product, dtype)


def _squeezing_parts(r, phi):
    """tanh(r)·e^{iφ}/2 and log sech r (stable for large r) of S(r·e^{iφ})."""
    r, phi = _as_real(r, tf.complex128), _as_real(phi, tf.complex128)
    half_tanh = tf.complex(0.5 * tf.tanh(r) * tf.cos(phi), 0.5 * tf.tanh(r) * tf.sin(phi))
    log_sech = -(tf.abs(r) + tf.math.log1p(tf.exp(-2.0 * tf.abs(r))) - np.log(2.0))
    return half_tanh, log_sech


def _squeezing_raising(half_tanh: tf.Tensor, cutoff: int, column: int | None = None) -> tf.Tensor:
    """E₊[m, k] = (−tanh r·e^{iφ}/2)^j/j! · √(m!/k!) for m = k + 2j (0 otherwise); only column k if given."""
    index, ratio = _squeezing_tables(cutoff)
    if column is not None:
        index, ratio = index[:, column], ratio[:, column]
    return _place(_scaled_powers(-half_tanh, cutoff // 2 + 1), index) * tf.constant(ratio, _WIDE)


def squeezed_vacuum(r, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Amplitudes ⟨n|S(z)|0⟩ of squeezed vacuum, z = r·e^{iφ}, S(z) = exp((z* a² − z a†²)/2).

    Column 0 of `squeezing_matrix`: only k = 0 survives the sum, so ⟨m|S|0⟩ = E₊[m, 0] (sech r)^½.

    Returns:
        Tensor of shape broadcast(r, phi).shape + (cutoff,); odd entries are zero.
    """
    half_tanh, log_sech = _squeezing_parts(r, phi)
    raising = _squeezing_raising(half_tanh, cutoff, column=0)
    return tf.cast(raising * tf.cast(tf.exp(0.5 * log_sech), _WIDE)[..., None], dtype)


def squeezing_matrix(r, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Matrix ⟨m|S(z)|n⟩, m, n < cutoff, of S(z) = exp((z* a² − z a†²)/2), z = r·e^{iφ}.

    From the disentangled form S = exp(−½e^{iφ} tanh r · a†²) (sech r)^(n̂+½) exp(½e^{−iφ} tanh r · a²):
    ⟨m|S|n⟩ = Σ_k E₊[m, k] (sech r)^(k+½) E₋[n, k], with E±[m, k] = c±^j/j! · √(m!/k!) for m = k + 2j,
    c₊ = −½e^{iφ} tanh r and c₋ = ½e^{−iφ} tanh r. Every k ≤ min(m, n) is kept, so the entries are
    the exact matrix elements of the untruncated operator.

    Returns:
        Tensor of shape broadcast(r, phi).shape + (cutoff, cutoff), indexed [..., m, n].
    """
    half_tanh, log_sech = _squeezing_parts(r, phi)
    index, ratio = _squeezing_tables(cutoff)
    half = cutoff // 2 + 1
    raising = _squeezing_raising(half_tanh, cutoff)
    lowering = _place(_scaled_powers(tf.math.conj(half_tanh), half), index) * tf.constant(ratio, _WIDE)
    levels = tf.constant(np.arange(cutoff) + 0.5, tf.float64)
    diagonal = tf.cast(tf.exp(log_sech[..., None] * levels), _WIDE)
    return tf.cast(tf.linalg.matmul(raising * diagonal[..., None, :], lowering, transpose_b=True), dtype)


def number_phases(angle, cutoff: int, power: int = 1, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Diagonal e^{i·angle·n^power}, n < cutoff: the rotation (power 1) or Kerr gate (power 2).

    Returns:
        Tensor of shape angle.shape + (cutoff,).
    """
    angle = _as_real(angle, dtype)[..., None]
    levels = tf.constant(np.arange(cutoff) ** power, _real_dtype(dtype))
    phase = angle * levels
    return tf.complex(tf.cos(phase), tf.sin(phase))


@functools.cache
def _beamsplitter_spectrum(cutoff: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies μ and real matrices A_μ, G_μ with B(θ, 0) = Σ_μ cos(θμ) A_μ + sin(θμ) G_μ.

    B(θ, 0) = exp(θ K), K = a b† − a† b, conserves the total photon number N. On the full block
    of each N (states |k, N−k⟩, k = 0..N) iK is Hermitian with integer eigenvalues, so
    exp(θK) = Σ_j e^{−iθλ_j} v_j v_j†. Restricting each block's eigenvectors to the states the
    cutoff keeps gives the exact truncated matrix elements for every N ≤ 2(cutoff − 1).
    """
    size = cutoff * cutoff
    frequencies = np.arange(-(2 * cutoff - 2), 2 * cutoff - 1)
    cosine_parts = np.zeros((len(frequencies), size, size))
    sine_parts = np.zeros((len(frequencies), size, size))
    for total in range(2 * cutoff - 1):
        k = np.arange(total + 1)
        generator = np.zeros((total + 1, total + 1))
        generator[k[1:] - 1, k[1:]] = np.sqrt(k[1:] * (total - k[1:] + 1))  # a b†|k, N−k⟩
        generator[k[:-1] + 1, k[:-1]] = -np.sqrt((k[:-1] + 1) * (total - k[:-1]))  # −a† b|k, N−k⟩
        eigenvalues, vectors = np.linalg.eigh(1j * generator)
        kept = (k < cutoff) & (total - k < cutoff)
        flat = k[kept] * cutoff + (total - k[kept])
        for eigenvalue, vector in zip(eigenvalues, vectors.T):
            projector = np.outer(vector[kept], vector[kept].conj())
            index = int(np.rint(eigenvalue)) + 2 * cutoff - 2
            # e^{−iθλ} P = (cos θλ − i sin θλ)(Re P + i Im P); its real part is what survives the sum
            cosine_parts[index][np.ix_(flat, flat)] += projector.real
            sine_parts[index][np.ix_(flat, flat)] += projector.imag
    return frequencies.astype(np.float64), cosine_parts, sine_parts


def beamsplitter_matrix(theta, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Matrix ⟨m1 m2|B(θ, φ)|n1 n2⟩ of B(θ, φ) = exp(θ(e^{iφ} a b† − e^{−iφ} a† b)), all < cutoff.

    B(θ, φ) = e^{−iφ n_a} B(θ, 0) e^{iφ n_a}, and B(θ, 0) is a real trigonometric polynomial in θ
    (see _beamsplitter_spectrum).

    Returns:
        Tensor of shape broadcast(theta, phi).shape + (cutoff, cutoff, cutoff, cutoff), indexed
        [..., m1, m2, n1, n2].
    """
    real = _real_dtype(dtype)
    frequencies, cosine_parts, sine_parts = _beamsplitter_spectrum(cutoff)
    theta, phi = _as_real(theta, dtype), _as_real(phi, dtype)
    angles = theta[..., None] * tf.constant(frequencies, real)
    real_matrix = tf.einsum("...u,uij->...ij", tf.cos(angles), tf.constant(cosine_parts, real))
    real_matrix += tf.einsum("...u,uij->...ij", tf.sin(angles), tf.constant(sine_parts, real))
    shape = tf.concat([tf.shape(real_matrix)[:-2], [cutoff] * 4], axis=0)
    matrix = tf.cast(tf.reshape(real_matrix, shape), dtype)
    levels = tf.constant(np.arange(cutoff), real)
    # phase e^{iφ(n1 − m1)} on entry [m1, m2, n1, n2]
    phase_angle = phi[..., None, None] * (levels[None, :] - levels[:, None])
    phase = tf.complex(tf.cos(phase_angle), tf.sin(phase_angle))
    return matrix * phase[..., :, None, :, None]
