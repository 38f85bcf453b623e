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
def _displacement_tables(cutoff: int) -> tuple[np.ndarray, np.ndarray]:
    """1/i! and √(i!) for i < cutoff, as float64."""
    factorials = np.array([math.factorial(i) for i in range(cutoff)], np.float64)
    return 1.0 / factorials, np.sqrt(factorials)


@functools.cache
def _displacement_polynomial(cutoff: int, rows: int | None = None) -> np.ndarray:
    """Coefficients P[p, m·cutoff + n] with ⟨m|D(r)|n⟩ = e^{−r²/2} Σ_p P[p, m·cutoff + n] r^p for real r.

    From the sum in `displacement_matrix` at α = r: the term k has power m + n − 2k and
    coefficient (−1)^(n−k) √(m! n!)/((m−k)! (n−k)! k!) = (−1)^(n−k) √(C(m,k) C(n,k)/((m−k)! (n−k)!)),
    a ratio of integers that Python rounds once, so every coefficient is the nearest float64.
    Rows m < `rows` (default cutoff), columns n < cutoff.
    """
    rows = cutoff if rows is None else rows
    table = np.zeros((rows + cutoff - 1, rows, cutoff))
    for m in range(rows):
        for n in range(cutoff):
            for k in range(min(m, n) + 1):
                square = math.comb(m, k) * math.comb(n, k) / (math.factorial(m - k) * math.factorial(n - k))
                table[m + n - 2 * k, m, n] = (-1) ** (n - k) * math.sqrt(square)
    return table.reshape(rows + cutoff - 1, rows * cutoff)


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
    inverse_factorials, _ = _displacement_tables(count)
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
    _, sqrt_factorials = _displacement_tables(cutoff)
    envelope = tf.cast(tf.exp(-0.5 * r * r), _WIDE)[..., None]
    return tf.cast(envelope * _powers(alpha, cutoff) / tf.constant(sqrt_factorials, _WIDE), dtype)


def real_displacement_matrix(r, cutoff: int, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """Matrix ⟨m|D(r)|n⟩, m, n < cutoff, of the displacement by a real α = r: a real matrix.

    Each entry is e^{−r²/2} times a polynomial in r (see _displacement_polynomial), so the whole
    matrix, batched or not, is one product of the powers of r with a constant table, evaluated in
    float64 (its alternating sums lose float32's digits) and cast to `dtype`.

    Args:
        r: real displacement, any shape.
        cutoff: number of Fock levels kept.
        dtype: tf.float32 or tf.float64.

    Returns:
        Tensor of shape r.shape + (cutoff, cutoff), indexed [..., m, n].
    """
    r = _as_real(r, tf.complex128)
    table = _displacement_polynomial(cutoff)
    flat = tf.tensordot(_powers(r, table.shape[0]), tf.constant(table), axes=1)
    matrix = tf.reshape(flat * tf.exp(-0.5 * r * r)[..., None], tf.concat([tf.shape(r), [cutoff, cutoff]], 0))
    return tf.cast(matrix, dtype)


def real_displacement_and_slope(r, cutoff: int, dtype: tf.DType = tf.float32) -> tuple[tf.Tensor, tf.Tensor]:
    """The matrix of real_displacement_matrix and its derivative in r, from one product.

    Args:
        r: real displacement, any shape.
        cutoff: number of Fock levels kept.
        dtype: tf.float32 or tf.float64.

    Returns:
        (matrix, slope), each of shape r.shape + (cutoff, cutoff), indexed [..., m, n]; the slope
        is the exact derivative of each truncated entry.
    """
    r = _as_real(r, tf.complex128)
    # one more row than kept: dD/dr = (a† − a) D, whose row m takes rows m − 1 and m + 1 of D
    table = _displacement_polynomial(cutoff, cutoff + 1)
    flat = (
        tf.tensordot(_powers(r, table.shape[0]), tf.constant(table), axes=1) * tf.exp(-0.5 * r * r)[..., None]
    )
    extended = tf.reshape(flat, tf.concat([tf.shape(r), [cutoff + 1, cutoff]], 0))
    levels = np.arange(cutoff, dtype=np.float64)[:, None]
    below = tf.concat([tf.zeros_like(extended[..., :1, :]), extended[..., : cutoff - 1, :]], axis=-2)
    slope = np.sqrt(levels) * below - np.sqrt(levels + 1) * extended[..., 1:, :]
    return tf.cast(extended[..., :cutoff, :], dtype), tf.cast(slope, dtype)


def displacement_matrix(r, phi, cutoff: int, dtype: tf.DType = tf.complex64) -> tf.Tensor:
    """Matrix ⟨m|D(α)|n⟩, m, n < cutoff, of D(α) = exp(α a† − α* a) with α = r·e^{iφ}.

    From D = e^{−|α|²/2} e^{α a†} e^{−α* a}:
    ⟨m|D|n⟩ = e^{−|α|²/2} √(m! n!) Σ_{k ≤ min(m, n)} α^(m−k)/(m−k)! · (−α*)^(n−k)/(n−k)! / k!.
    Every entry is the exact matrix element of the untruncated operator. D(r·e^{iφ}) =
    e^{iφn̂} D(r) e^{−iφn̂}, so it is the real matrix of `real_displacement_matrix` with the phase
    e^{iφ(m−n)} on entry [m, n].

    Returns:
        Tensor of shape broadcast(r, phi).shape + (cutoff, cutoff), indexed [..., m, n].
    """
    r, phi = _as_real(r, tf.complex128), _as_real(phi, tf.complex128)
    r, phi = r + tf.zeros_like(phi), phi + tf.zeros_like(r)
    magnitude = real_displacement_matrix(r, cutoff, tf.float64)
    levels = tf.constant(np.arange(cutoff), tf.float64)
    angle = phi[..., None, None] * (levels[:, None] - levels[None, :])
    return tf.cast(tf.complex(magnitude * tf.cos(angle), magnitude * tf.sin(angle)), dtype)


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
    coefficient tables, and are then placed (_placed): at cutoff 8 the dense matrix has 4,096
    entries of which 344 can be non-zero, and a product with the placed tables costs XLA's CPU
    backend far more, above all in its gradient.

    Returns:
        Tensor of shape theta.shape + positions.shape.
    """
    frequencies, _, cosine_parts, sine_parts = _beamsplitter_spectrum(cutoff)
    angles = theta[..., None] * tf.constant(frequencies, theta.dtype)
    waves = tf.concat([tf.cos(angles), tf.sin(angles)], axis=-1)
    parts = np.concatenate([cosine_parts, sine_parts], axis=0)
    return _placed(tf.tensordot(waves, tf.constant(parts, theta.dtype), axes=1), positions)


def _placed(entries: tf.Tensor, positions: np.ndarray) -> tf.Tensor:
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

        placed = tf.gather(entries, tf.constant(flat.astype(np.int32)), axis=-1)
        return tf.reshape(placed, tf.concat([tf.shape(entries)[:-1], positions.shape], 0)), gradient

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
    real = _real_dtype(dtype)
    _, _, entry_positions = block_layout(cutoff)
    theta, phi = _as_real(theta, dtype), _as_real(phi, dtype)
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
    real = _real_dtype(dtype)
    theta, phi = _as_real(theta, dtype), _as_real(phi, dtype)
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
