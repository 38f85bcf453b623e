"""A Strawberry Fields program read as the fock engine's gates, and the block of gates it repeats."""

from __future__ import annotations

import numpy as np
import strawberryfields as sf
from strawberryfields import ops
from strawberryfields.parameters import FreeParameter

from qgan.engines.fock_apply import Gate

_GATE_KINDS = {
    ops.BSgate: "BSgate",
    ops.Dgate: "Dgate",
    ops.Kgate: "Kgate",
    ops.Rgate: "Rgate",
    ops.Sgate: "Sgate",
}
SUPPORTED_OPERATIONS = tuple(sorted(_GATE_KINDS.values()))


class UnsupportedOperationError(ValueError):
    """The program holds an operation or parameter the fock engine cannot simulate."""


def parse_program(program: sf.Program) -> list[Gate]:
    """Reads the gates of a program, checking that the fock engine supports each.

    Args:
        program: an sf.Program built from BSgate, Dgate, Kgate, Rgate and Sgate whose arguments are
            numbers or free parameters.

    Returns:
        The gates in program order.

    Raises:
        UnsupportedOperationError: naming the first operation or argument that is not supported.
    """
    gates = []
    for position, command in enumerate(program.circuit):
        kind = _GATE_KINDS.get(type(command.op))
        modes = tuple(register.ind for register in command.reg)
        if kind is None:
            raise UnsupportedOperationError(
                f"the fock engine cannot run operation {position} ({command.op} on modes {modes}); "
                f"supported: {', '.join(SUPPORTED_OPERATIONS)}"
            )
        parameters = []
        for value in command.op.p:
            if isinstance(value, FreeParameter):
                parameters.append(value.name)
            elif isinstance(value, (int, float, np.integer, np.floating)):
                parameters.append(float(value))
            else:
                raise UnsupportedOperationError(
                    f"the fock engine cannot evaluate argument {value} of operation {position} "
                    f"({command.op}); allowed: numbers and free parameters (program.params)"
                )
        gates.append(Gate(kind, modes, tuple(parameters)))
    return gates


def repeated_block(gates: list[Gate]) -> tuple[int, int, int]:
    """Where a gate list repeats one block: (start, period, repetitions) of its longest periodic tail.

    Gates repeat when they have the same kind and modes, whatever their arguments (fixed numbers,
    shared or per-sample free parameters). The tail gates[start:] is `repetitions` copies of a
    block of `period` gates; the earliest start wins, then the shortest period. Without a repeated
    block, (len(gates), 0, 0).

    Args:
        gates: gates in program order.

    Returns:
        (start, period, repetitions), repetitions ≥ 2 when a block repeats.
    """
    signatures = [(gate.kind, gate.modes) for gate in gates]
    count = len(signatures)
    for start in range(count):
        length = count - start
        for period in range(1, length // 2 + 1):
            if length % period == 0 and all(
                signatures[index] == signatures[index - period] for index in range(start + period, count)
            ):
                return start, period, length // period
    return count, 0, 0
