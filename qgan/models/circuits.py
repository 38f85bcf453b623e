"""The generator's circuit, defined once as a Strawberry Fields program with named free parameters."""

from __future__ import annotations

import dataclasses

import strawberryfields as sf
from strawberryfields import ops

from qgan.models.circuit_layout import beamsplitter_pairs, layer_group_sizes

# Gate groups whose magnitude the generator bounds; interferometer angles stay unbounded.
ACTIVE_GROUPS = ("squeeze", "displace", "kerr")
LATENT_PREFIX = "latent"


@dataclasses.dataclass(frozen=True)
class Circuit:
    """A Strawberry Fields program and the layout of its free parameters.

    Attributes:
        program: the sf.Program; every gate argument is a named free parameter.
        modes: number of optical modes.
        layers: number of CV neural-network layers after the latent encoding.
        group_sizes: parameters per layer of each group, e.g. {"squeeze": modes, ...}.
        encodings: how often the latent code is displaced into the modes (1, or layers when
            re-uploading).
        latent_names: free parameters fed per sample (latent displacement of each mode in each
            encoding), in the order of `latent_name(encoding, mode)` over encodings, then modes.
    """

    program: sf.Program
    modes: int
    layers: int
    group_sizes: dict
    encodings: int
    latent_names: tuple[str, ...]

    def parameter_name(self, group: str, layer: int, index: int) -> str:
        """The free-parameter name of one scalar of a group."""
        return f"{group}_{layer}_{index}"

    def latent_name(self, encoding: int, mode: int) -> str:
        """The free-parameter name of the latent displacement of `mode` in one encoding."""
        return latent_name(encoding, mode)


def latent_name(encoding: int, mode: int) -> str:
    """The free-parameter name of a latent displacement: latent_<mode>, then latent_<encoding>_<mode>."""
    return f"{LATENT_PREFIX}_{mode}" if encoding == 0 else f"{LATENT_PREFIX}_{encoding}_{mode}"


def build_circuit(modes: int, layers: int, reupload: bool = False) -> Circuit:
    """Builds the generator circuit: latent displacements, then `layers` CV neural-network layers.

    Each layer applies an interferometer (a beamsplitter mesh and a rotation per mode),
    squeezing Sgate(r) per mode, a second interferometer, a real displacement Dgate(d) per
    mode and a Kerr gate Kgate(k) per mode. The latent code enters as Dgate(latent_i) on mode i
    before the first layer, and with `reupload` again before every later layer.

    Args:
        modes: number of optical modes (≥ 1).
        layers: number of layers (≥ 1).
        reupload: displace the latent code into the modes before every layer, not only the first.

    Returns:
        The Circuit.
    """
    pairs = beamsplitter_pairs(modes)
    group_sizes = layer_group_sizes(modes)
    program = sf.Program(modes)
    encodings = layers if reupload else 1
    latent_names = tuple(
        latent_name(encoding, mode) for encoding in range(encodings) for mode in range(modes)
    )
    circuit = Circuit(program, modes, layers, group_sizes, encodings, latent_names)

    def parameter(group, layer, index):
        return program.params(circuit.parameter_name(group, layer, index))

    def interferometer(prefix, layer, q):
        for index, (first, second) in enumerate(pairs):
            theta = parameter(f"{prefix}_theta", layer, index)
            phi = parameter(f"{prefix}_phi", layer, index)
            ops.BSgate(theta, phi) | (q[first], q[second])
        for mode in range(modes):
            ops.Rgate(parameter(f"{prefix}_rot", layer, mode)) | q[mode]

    with program.context as q:
        for layer in range(layers):
            if layer < encodings:
                for mode in range(modes):
                    ops.Dgate(program.params(latent_name(layer, mode)), 0.0) | q[mode]
            interferometer("int1", layer, q)
            for mode in range(modes):
                ops.Sgate(parameter("squeeze", layer, mode), 0.0) | q[mode]
            interferometer("int2", layer, q)
            for mode in range(modes):
                ops.Dgate(parameter("displace", layer, mode), 0.0) | q[mode]
            for mode in range(modes):
                ops.Kgate(parameter("kerr", layer, mode)) | q[mode]
    return circuit
