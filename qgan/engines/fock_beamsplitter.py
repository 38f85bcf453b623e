"""The beamsplitter's truncated Fock-basis matrix, by its photon-number blocks or dense."""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from qgan.engines.fock_gates import as_real, real_dtype


@functools.cache
def _beamsplitter_spectrum(cutoff: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies μ ≥ 0, real C, S with B(θ, 0) = Σ_μ cos(θμ) C_μ + sin(θμ) S_μ, and where each entry sits.

    B(θ, 0) = exp(θ K), K = a b† − a† b, conserves the total photon number N. On the full block
    of each N (states |k, N−k⟩, k = 0..N) iK is Hermitian with integer eigenvalues, so
    exp(θK) = Σ_j e^{−iθλ_j} v_j v_j†. Restricting each block's eigenvectors to the states the
    cutoff keeps gives the exact truncated matrix elements for every N ≤ 2(cutoff − 1). Only the
    entries inside a block can be non-zero (670 of 10,000 at cutoff 10), so the coefficients are
    kept for those alone; the frequencies ±μ are folded together (cos is even, sin odd).

    Returns:
        frequencies (F,); positions (cutoff⁴,): for each flat entry of the (cutoff², cutoff²)
        matrix, its index among the E entries that can be non-zero, or E for a zero; and the
        cosine and sine coefficients of those entries, each (F, E + 1), the last column zero (the
        entry E that positions give for a zero).
    """
    size = cutoff * cutoff
    largest = 2 * cutoff - 2
    cosine_parts = np.zeros((largest + 1, size, size))
    sine_parts = np.zeros((largest + 1, size, size))
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
            frequency = int(np.rint(eigenvalue))
            # e^{−iθλ} P = (cos θλ − i sin θλ)(Re P + i Im P); its real part is what survives the sum
            cosine_parts[abs(frequency)][np.ix_(flat, flat)] += projector.real
            sine_parts[abs(frequency)][np.ix_(flat, flat)] += np.sign(frequency) * projector.imag
    first, second = np.meshgrid(np.arange(cutoff), np.arange(cutoff), indexing="ij")
    totals = (first + second).ravel()
    entries = np.flatnonzero(totals[:, None] == totals[None, :])
    positions = np.full(size * size, len(entries), np.int32)
    positions[entries] = np.arange(len(entries))
    zero = np.zeros((largest + 1, 1))
    return (
        np.arange(largest + 1, dtype=np.float64),
        positions,
        np.concatenate([cosine_parts.reshape(largest + 1, -1)[:, entries], zero], axis=1),
        np.concatenate([sine_parts.reshape(largest + 1, -1)[:, entries], zero], axis=1),
    )


def _beamsplitter_entries(theta: tf.Tensor, cutoff: int, positions: np.ndarray) -> tf.Tensor:
    """Entries of B(θ, 0) at `positions` (indices among the E that can be non-zero, E for a zero).

    The E entries (and the zero) come from one small product of the waves cos θμ, sin θμ with the
    coefficient tables, and are then placed (see placed): at cutoff 8 the dense matrix has 4,096
    entries of which 344 can be non-zero, and a product with the placed tables costs XLA's CPU
    backend far more, above all in its gradient.

    Returns:
        Tensor of shape theta.shape + positions.shape.
    """
    frequencies, _, cosine_parts, sine_parts = _beamsplitter_spectrum(cutoff)
    angles = theta[..., None] * tf.constant(frequencies, theta.dtype)
    waves = tf.concat([tf.cos(angles), tf.sin(angles)], axis=-1)
    parts = np.concatenate([cosine_parts, sine_parts], axis=0)
    return placed(tf.tensordot(waves, tf.constant(parts, theta.dtype), axes=1), positions)


def placed(entries: tf.Tensor, positions: np.ndarray) -> tf.Tensor:
    """entries[..., positions] where every index but the last (a zero entry) appears at most once.

    Each placed entry then has one place, so the gradient is a gather too, not the scatter that
    TensorFlow derives for a gather (which XLA's CPU backend runs as a loop over the indices).

    Returns:
        Tensor of shape entries.shape[:-1] + positions.shape.
    """
    count = entries.shape[-1]
    flat = positions.ravel()
    kept = np.flatnonzero(flat < count - 1)
    if len(np.unique(flat[kept])) != len(kept):
        raise ValueError("each entry but the last may appear once among the positions")
    inverse = np.full(count, flat.size, np.int32)  # the zero appended to the gradient
    inverse[flat[kept]] = kept

    @tf.custom_gradient
    def place(entries):
        def gradient(upstream):
            upstream = tf.reshape(
                upstream, tf.concat([tf.shape(upstream)[: -positions.ndim], [flat.size]], 0)
            )
            padded = tf.concat([upstream, tf.zeros_like(upstream[..., :1])], axis=-1)
            return tf.gather(padded, tf.constant(inverse), axis=-1)

        gathered = tf.gather(entries, tf.constant(flat.astype(np.int32)), axis=-1)
        return tf.reshape(gathered, tf.concat([tf.shape(entries)[:-1], positions.shape], 0)), gradient

    return place(entries)


@functools.cache
def block_layout(cutoff: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the two-mode states sit when grouped by total photon number N.

    Block N holds the states |n1, N − n1⟩ the cutoff keeps, in order of n1 from its lowest value
    max(0, N − cutoff + 1); each block is padded to `cutoff` slots.

    Returns:
        into_blocks (2·cutoff − 1, cutoff): the flat index n1·cutoff + n2 of each slot, or
        cutoff² (a zero appended to the flat state) for a padding slot; out_of_blocks (cutoff²,):
        the slot N·cutoff + t of each flat state; entry_positions (2·cutoff − 1, cutoff, cutoff):
        for [N, s, t], the index of ⟨slot s|B|slot t⟩ among _beamsplitter_spectrum's entries, or E
        (its appended zero) where either slot is padding.
    """
    blocks = 2 * cutoff - 1
    _, positions, cosine_parts, _ = _beamsplitter_spectrum(cutoff)
    zero_entry = cosine_parts.shape[1] - 1  # the tables' last, zero column
    into_blocks = np.full((blocks, cutoff), cutoff * cutoff)
    out_of_blocks = np.zeros(cutoff * cutoff, np.int32)
    for total in range(blocks):
        lowest = max(0, total - cutoff + 1)
        for slot, first in enumerate(range(lowest, min(total, cutoff - 1) + 1)):
            flat = first * cutoff + (total - first)
            into_blocks[total, slot] = flat
            out_of_blocks[flat] = total * cutoff + slot
    padding = into_blocks == cutoff * cutoff
    rows, columns = into_blocks[:, :, None], into_blocks[:, None, :]
    entry_positions = positions[np.minimum(rows * cutoff * cutoff + columns, cutoff**4 - 1)]
    entry_positions[padding[:, :, None] | padding[:, None, :]] = zero_entry
    return into_blocks.astype(np.int32), out_of_blocks, entry_positions.astype(np.int32)


def beamsplitter_blocks(theta, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """B(θ, φ) by photon-number blocks: [..., N, s, t] = ⟨slot s of N|B(θ, φ)|slot t of N⟩ (see block_layout).

    B conserves the total photon number, so these 2·cutoff − 1 blocks of at most cutoff × cutoff
    entries are all of its matrix (padding slots hold zeros). On slots s, t of block N the first
    mode holds lowest(N) + s and lowest(N) + t photons, so the phase e^{iφ(n1 − m1)} is e^{iφ(t − s)}.

    Returns:
        Tensor of shape broadcast(theta, phi).shape + (2·cutoff − 1, cutoff, cutoff).
    """
    real = real_dtype(dtype)
    _, _, entry_positions = block_layout(cutoff)
    theta, phi = as_real(theta, dtype), as_real(phi, dtype)
    blocks = tf.cast(_beamsplitter_entries(theta, cutoff, entry_positions), dtype)
    slots = tf.constant(np.arange(cutoff), real)
    phase_angle = phi[..., None, None] * (slots[None, :] - slots[:, None])
    phase = tf.complex(tf.cos(phase_angle), tf.sin(phase_angle))
    return blocks * phase[..., None, :, :]


def beamsplitter_matrix(theta, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Matrix ⟨m1 m2|B(θ, φ)|n1 n2⟩ of B(θ, φ) = exp(θ(e^{iφ} a b† − e^{−iφ} a† b)), all < cutoff.

    B(θ, φ) = e^{−iφ n_a} B(θ, 0) e^{iφ n_a}, and B(θ, 0) is a real trigonometric polynomial in θ
    (see _beamsplitter_spectrum).

    Returns:
        Tensor of shape broadcast(theta, phi).shape + (cutoff, cutoff, cutoff, cutoff), indexed
        [..., m1, m2, n1, n2].
    """
    real = real_dtype(dtype)
    theta, phi = as_real(theta, dtype), as_real(phi, dtype)
    matrix = tf.cast(real_beamsplitter_matrix(theta, cutoff, real), dtype)
    levels = tf.constant(np.arange(cutoff), real)
    # phase e^{iφ(n1 − m1)} on entry [m1, m2, n1, n2]
    phase_angle = phi[..., None, None] * (levels[None, :] - levels[:, None])
    phase = tf.complex(tf.cos(phase_angle), tf.sin(phase_angle))
    return matrix * phase[..., :, None, :, None]


def real_beamsplitter_matrix(theta, cutoff: int, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """Matrix ⟨m1 m2|B(θ, 0)|n1 n2⟩ of the beamsplitter without phase, which is real.

    Args:
        theta: transmission angle, any shape.
        cutoff: Fock levels kept per mode.
        dtype: tf.float32 or tf.float64.

    Returns:
        Tensor of shape theta.shape + (cutoff, cutoff, cutoff, cutoff), indexed [..., m1, m2, n1, n2].
    """
    _, positions, _, _ = _beamsplitter_spectrum(cutoff)
    theta = (
        tf.cast(theta, dtype) if isinstance(theta, (tf.Tensor, tf.Variable)) else tf.constant(theta, dtype)
    )
    return _beamsplitter_entries(theta, cutoff, positions.reshape((cutoff,) * 4))
