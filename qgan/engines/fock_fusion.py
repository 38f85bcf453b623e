"""Runs of gates that every sample shares, multiplied into one state-space matrix per repetition."""

from __future__ import annotations

import tensorflow as tf

from qgan.engines.fock_apply import Gate, apply_operator, single_mode_matrix


def fuse_shared_runs(
    gates: list, operators: list, shared: list, repetitions: int, modes: int, cutoff: int, dtype: tf.DType
) -> tuple[list, list]:
    """Replaces each run of two or more consecutive shared gates by one "fused" gate.

    A fused gate's operator is (repetitions, cutoff^modes, cutoff^modes): ψ' = ψ R for each sample's
    ψ flattened to a row (apply_operator multiplies it in). Gates with per-sample arguments, and
    shared gates that stand alone, are kept as they are.

    Args:
        gates: the repeated block's gates, in order.
        operators: each gate's operator for every repetition (leading axis `repetitions`).
        shared: for each gate, whether its arguments are the same for every sample.
        repetitions: how often the block repeats.
        modes: number of modes of the state.
        cutoff: Fock levels kept per mode.
        dtype: complex dtype of the state.

    Returns:
        The new gate list and operator list, in the same order.
    """
    fused_gates, fused_operators, run = [], [], []
    for gate, operator, is_shared in zip(gates + [None], operators + [None], shared + [False]):
        if is_shared:
            run.append((gate, operator))
            continue
        if len(run) == 1:
            fused_gates.append(run[0][0])
            fused_operators.append(run[0][1])
        elif run:
            fused_gates.append(Gate("fused", tuple(range(modes)), ()))
            fused_operators.append(run_matrix(run, repetitions, modes, cutoff, dtype))
        run = []
        if gate is not None:
            fused_gates.append(gate)
            fused_operators.append(operator)
    return fused_gates, fused_operators


def run_matrix(run: list, repetitions: int, modes: int, cutoff: int, dtype: tf.DType) -> tf.Tensor:
    """The matrix R, (repetitions, cutoff^modes, cutoff^modes), of a run of (gate, operator) pairs.

    Consecutive single-mode gates on one mode are first multiplied into one cutoff × cutoff matrix;
    the beamsplitters and those products are then applied to every basis state of every repetition
    at once, which costs about as much as running cutoff^modes samples through the run.
    """
    dimension = cutoff**modes
    levels = (cutoff,) * modes
    # the repetition is the batch axis and the basis state an extra leading mode, so each
    # repetition's gates act on its own basis states
    basis = tf.reshape(tf.eye(dimension, dtype=dtype), (1, dimension) + levels)
    columns = tf.tile(basis, (repetitions, 1) + (1,) * modes)
    pending = {}  # mode → the product of its single-mode gates not yet applied, (repetitions, c, c)

    def flush(columns, mode):
        if mode not in pending:
            return columns
        return apply_operator(Gate("matrix", (mode + 1,), ()), pending.pop(mode), columns, modes + 1)

    for gate, operator in run:
        if len(gate.modes) == 1:
            (mode,) = gate.modes
            matrix = single_mode_matrix(gate, operator, dtype)
            pending[mode] = matrix if mode not in pending else tf.linalg.matmul(matrix, pending[mode])
            continue
        for mode in gate.modes:
            columns = flush(columns, mode)
        shifted = Gate(gate.kind, tuple(mode + 1 for mode in gate.modes), gate.parameters)
        columns = apply_operator(shifted, operator, columns, modes + 1)
    for mode in sorted(pending):
        columns = flush(columns, mode)
    return tf.reshape(columns, (repetitions, dimension, dimension))
