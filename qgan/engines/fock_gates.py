"""Truncated Fock-basis matrices of CV gates, built from TensorFlow ops and batched over parameters."""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf


def real_dtype(dtype: tf.DType) -> tf.DType:
    return tf.float64 if dtype == tf.complex128 else tf.float32


def as_real(value, dtype: tf.DType) -> tf.Tensor:
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return tf.cast(value, real_dtype(dtype))
    return tf.convert_to_tensor(np.asarray(value, np.float64), real_dtype(dtype))


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
    r, phi = as_real(r, tf.complex128), as_real(phi, tf.complex128)
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
    return tf.cast(_real_displacement_rows(r, cutoff, cutoff), dtype)


def _real_displacement_rows(r, cutoff: int, rows: int) -> tf.Tensor:
    """⟨m|D(r)|n⟩ for m < rows, n < cutoff, in float64: r.shape + (rows, cutoff)."""
    r = as_real(r, tf.complex128)
    table = _displacement_polynomial(cutoff, rows)
    flat = tf.tensordot(_powers(r, table.shape[0]), tf.constant(table), axes=1)
    return tf.reshape(flat * tf.exp(-0.5 * r * r)[..., None], tf.concat([tf.shape(r), [rows, cutoff]], 0))


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
    # one more row than kept: dD/dr = (a† − a) D, whose row m takes rows m − 1 and m + 1 of D
    extended = _real_displacement_rows(r, cutoff, cutoff + 1)
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
    r, phi = as_real(r, tf.complex128), as_real(phi, tf.complex128)
    r, phi = r + tf.zeros_like(phi), phi + tf.zeros_like(r)
    magnitude = real_displacement_matrix(r, cutoff, tf.float64)
    levels = tf.constant(np.arange(cutoff), tf.float64)
    angle = phi[..., None, None] * (levels[:, None] - levels[None, :])
    return tf.cast(tf.complex(magnitude * tf.cos(angle), magnitude * tf.sin(angle)), dtype)


def _squeezing_parts(r, phi):
    """tanh(r)·e^{iφ}/2 and log sech r (stable for large r) of S(r·e^{iφ})."""
    r, phi = as_real(r, tf.complex128), as_real(phi, tf.complex128)
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
    angle = as_real(angle, dtype)[..., None]
    levels = tf.constant(np.arange(cutoff) ** power, real_dtype(dtype))
    phase = angle * levels
    return tf.complex(tf.cos(phase), tf.sin(phase))
