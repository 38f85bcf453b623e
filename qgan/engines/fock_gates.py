"""Truncated Fock-basis matrices of CV gates, built from TensorFlow ops and batched over parameters."""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf


def _real_dtype(dtype: tf.DType) -> tf.DType:
    return tf.float64 if dtype == tf.complex128 else tf.float32


def _as_real(value, dtype: tf.DType) -> tf.Tensor:
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return tf.cast(value, _real_dtype(dtype))
    return tf.convert_to_tensor(np.asarray(value, np.float64), _real_dtype(dtype))


def _shift_down(column: tf.Tensor) -> tf.Tensor:
    """Entry m of the result is entry m−1 of `column` (0 at m = 0), along the last axis."""
    return tf.concat([tf.zeros_like(column[..., :1]), column[..., :-1]], axis=-1)


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
    r, phi = _as_real(r, dtype), _as_real(phi, dtype)
    alpha = tf.complex(r * tf.cos(phi), r * tf.sin(phi))
    amplitude = tf.cast(tf.exp(-0.5 * r * r), dtype)
    amplitudes = [amplitude]
    for n in range(1, cutoff):
        amplitude = amplitude * alpha / np.sqrt(n)
        amplitudes.append(amplitude)
    return tf.stack(amplitudes, axis=-1)


def displacement_matrix(r, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Matrix ⟨m|D(α)|n⟩, m, n < cutoff, of D(α) = exp(α a† − α* a) with α = r·e^{iφ}.

    Column 0 is the coherent state; column n+1 follows from D a† = (a† − α*) D:
    √(n+1) D[m, n+1] = √m D[m−1, n] − α* D[m, n]. Every entry is the exact matrix element of the
    untruncated operator.

    Returns:
        Tensor of shape broadcast(r, phi).shape + (cutoff, cutoff), indexed [..., m, n].
    """
    r, phi = _as_real(r, dtype), _as_real(phi, dtype)
    alpha_conjugate = tf.complex(r * tf.cos(phi), -r * tf.sin(phi))[..., None]
    sqrt_m = tf.constant(np.sqrt(np.arange(cutoff)), dtype)
    column = coherent_state(r, phi, cutoff, dtype)
    columns = [column]
    for n in range(cutoff - 1):
        column = (sqrt_m * _shift_down(column) - alpha_conjugate * column) / np.sqrt(n + 1)
        columns.append(column)
    return tf.stack(columns, axis=-1)


def squeezed_vacuum(r, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Amplitudes ⟨n|S(z)|0⟩ of squeezed vacuum, z = r·e^{iφ}, S(z) = exp((z* a² − z a†²)/2).

    Returns:
        Tensor of shape broadcast(r, phi).shape + (cutoff,); odd entries are zero.
    """
    r, phi = _as_real(r, dtype), _as_real(phi, dtype)
    ratio = -tf.complex(tf.tanh(r) * tf.cos(phi), tf.tanh(r) * tf.sin(phi))
    first = tf.cast(tf.sqrt(1.0 / tf.cosh(r)), dtype)
    zero = tf.zeros_like(first)
    amplitudes = [first, zero]
    for m in range(2, cutoff):
        amplitudes.append(ratio * np.sqrt((m - 1) / m) * amplitudes[m - 2])
    return tf.stack(amplitudes[:cutoff], axis=-1)


def squeezing_matrix(r, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Matrix ⟨m|S(z)|n⟩, m, n < cutoff, of S(z) = exp((z* a² − z a†²)/2), z = r·e^{iφ}.

    Column 0 is squeezed vacuum; column n+1 follows from a† S = S(a† cosh r − e^{−iφ} a sinh r):
    √(n+1) S[m, n+1] = √m sech r · S[m−1, n] + e^{−iφ} tanh r · √n S[m, n−1].

    Returns:
        Tensor of shape broadcast(r, phi).shape + (cutoff, cutoff), indexed [..., m, n].
    """
    r, phi = _as_real(r, dtype), _as_real(phi, dtype)
    sech = tf.cast(1.0 / tf.cosh(r), dtype)[..., None]
    tanh_phase = tf.complex(tf.tanh(r) * tf.cos(phi), -tf.tanh(r) * tf.sin(phi))[..., None]
    sqrt_m = tf.constant(np.sqrt(np.arange(cutoff)), dtype)
    columns = [squeezed_vacuum(r, phi, cutoff, dtype)]
    previous = tf.zeros_like(columns[0])
    for n in range(cutoff - 1):
        column = (sqrt_m * sech * _shift_down(columns[n]) + tanh_phase * np.sqrt(n) * previous) / np.sqrt(
            n + 1
        )
        previous = columns[n]
        columns.append(column)
    return tf.stack(columns, axis=-1)


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
