"""The generator circuit's free parameters, laid out and counted without building the circuit."""

from __future__ import annotations


def beamsplitter_pairs(modes: int) -> list[tuple[int, int]]:
    """Neighbouring mode pairs of a rectangular (Clements) mesh: modes·(modes−1)/2 beamsplitters."""
    pairs = []
    for column in range(modes):
        for first in range(column % 2, modes - 1, 2):
            pairs.append((first, first + 1))
    return pairs


def layer_group_sizes(modes: int) -> dict[str, int]:
    """Parameters per layer of each gate group, in the order a layer applies them."""
    beamsplitters = len(beamsplitter_pairs(modes))
    return {
        "int1_theta": beamsplitters,
        "int1_phi": beamsplitters,
        "int1_rot": modes,
        "squeeze": modes,
        "int2_theta": beamsplitters,
        "int2_phi": beamsplitters,
        "int2_rot": modes,
        "displace": modes,
        "kerr": modes,
    }


def quantum_parameter_count(
    modes: int, layers: int, reupload: bool = False, output_dim: int = 2, latent_output: bool = False
) -> int:
    """The trainable scalars of a QuantumGenerator with these settings.

    Args:
        modes: optical modes.
        layers: circuit layers.
        reupload: whether the latent code is displaced into the modes before every layer (one
            trained weight per mode and layer), or only before the first (one per mode).
        output_dim: coordinates per sample; the readout has a scale and a shift for each.
        latent_output: whether two trained weights add the latent code to the coordinates.

    Returns:
        The count, equal to QuantumGenerator(...).parameter_count().
    """
    gates = layers * sum(layer_group_sizes(modes).values())
    latent = (layers if reupload else 0) * modes
    return gates + latent + (2 if latent_output else 0) + 2 * output_dim
