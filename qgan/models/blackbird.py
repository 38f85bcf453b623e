"""A trained quantum generator's circuit at one latent point, as a Strawberry Fields program and Blackbird."""

from __future__ import annotations

import numpy as np
import strawberryfields as sf
import tensorflow as tf
from strawberryfields import ops
from strawberryfields.parameters import FreeParameter

PROGRAM_NAME = "qgan_generator"


def latent_row(latent) -> tf.Tensor:
    """A latent point as the (1, modes) batch the generator takes."""
    return tf.constant(np.asarray(latent, np.float32)[None, :])


def bound_values(generator, latent) -> dict:
    """Every free parameter of the generator's circuit at one latent point, as a float.

    Args:
        generator: a QuantumGenerator.
        latent: (modes,) the continuous latent point, as the generator reads it before its
            latent distribution (uniform values in [-1, 1]).

    Returns:
        {parameter name: value}.
    """
    arguments = generator.circuit_arguments(latent_row(latent))
    return {name: float(np.reshape(entry.tensor(), [-1])[0]) for name, entry in arguments.items()}


def bound_program(generator, latent, measure: bool = True) -> sf.Program:
    """The generator's circuit with every parameter bound for `latent`, its readout's physics appended.

    After the circuit's gates come the latent output displacement (with `latent_output`), a
    LossChannel(η) on each ancilla for a detector efficiency below 1, a LossChannel(T) on each read
    mode for an output loss below 1, and (with `measure`) MeasureFock (with the detector's dark
    counts) or MeasureThreshold on the ancillas. Dark counts are Strawberry Fields' own
    post-sampling model there; the readout's affine map (scale, shift) is classical
    post-processing and not part of the program.
    """
    values = bound_values(generator, latent)
    source = generator.circuit.program
    program = sf.Program(source.num_subsystems, name=PROGRAM_NAME)
    with program.context as q:
        for command in source.circuit:
            arguments = [
                values[parameter.name] if isinstance(parameter, FreeParameter) else float(parameter)
                for parameter in command.op.p
            ]
            type(command.op)(*arguments) | tuple(q[register.ind] for register in command.reg)
        if generator.latent_output:
            first, second = (float(value) for value in generator.output_displacement(latent_row(latent))[0])
            if generator.outcomes and generator.quadratures == "xp":
                alpha = complex(first, second)
                ops.Dgate(abs(alpha), float(np.angle(alpha))) | q[generator.output_modes[0]]
            else:
                ops.Dgate(first, 0.0) | q[0]
                ops.Dgate(second, 0.0) | q[1]
        detector = generator.detector_model
        if generator.outcomes and detector.efficiency < 1.0:
            for mode in generator.ancilla_modes:
                ops.LossChannel(detector.efficiency) | q[mode]
        if generator.output_loss < 1.0:
            for mode in generator.output_modes:
                ops.LossChannel(generator.output_loss) | q[mode]
        if measure and generator.outcomes:
            ancillas = tuple(q[mode] for mode in generator.ancilla_modes)
            if detector.kind == "threshold":
                ops.MeasureThreshold() | ancillas
            elif detector.dark_counts:
                ops.MeasureFock(dark_counts=[detector.dark_counts] * len(ancillas)) | ancillas
            else:
                ops.MeasureFock() | ancillas
    return program


def blackbird_text(generator, latent, source: str = "") -> str:
    """The Blackbird script of bound_program, with comments on the latent point and the readout."""
    program = bound_program(generator, latent)
    scale = ", ".join(f"{value:.9g}" for value in np.asarray(generator.readout_scale))
    shift = ", ".join(f"{value:.9g}" for value in np.asarray(generator.readout_shift))
    if not generator.outcomes:
        read = "<x> of modes 0 and 1"
    elif generator.quadratures == "xp":
        read = "(<x>, <p>) of mode 0 given the outcome"
    else:
        read = "<x> of modes 0 and 1 given the outcome"
    point = ", ".join(f"{value:.9g}" for value in latent)
    lines = [
        f"# qgan generator{' of ' + source if source else ''} at latent point {point}",
        f"# coordinates = scale * {read} + shift (hbar = 2), scale = {scale}, shift = {shift}",
    ]
    detector = generator.detector_model
    if generator.outcomes and detector.dark_counts and detector.kind == "threshold":
        lines.append(f"# dark counts of {detector.dark_counts:g} per window are not part of MeasureThreshold")
    return "\n".join(lines) + "\n" + sf.io.to_blackbird(program).serialize()
