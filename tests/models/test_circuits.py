"""Tests of qgan.models.circuits: the program's gates and parameter layout."""

import pytest
from strawberryfields import ops

from qgan.models.circuit_layout import beamsplitter_pairs
from qgan.models.circuits import build_circuit


@pytest.mark.parametrize("modes", [1, 2, 3, 4, 5])
def test_mesh_has_one_beamsplitter_per_mode_pair(modes):
    pairs = beamsplitter_pairs(modes)
    assert len(pairs) == modes * (modes - 1) // 2
    assert all(second == first + 1 for first, second in pairs)


def test_program_gates_in_killoran_layer_order():
    circuit = build_circuit(modes=2, layers=2)
    names = [type(command.op).__name__ for command in circuit.program.circuit]
    latent = ["Dgate", "Dgate"]
    layer = [
        "BSgate",
        "Rgate",
        "Rgate",
        "Sgate",
        "Sgate",
        "BSgate",
        "Rgate",
        "Rgate",
        "Dgate",
        "Dgate",
        "Kgate",
        "Kgate",
    ]
    assert names == latent + layer + layer


def test_every_gate_argument_is_a_named_free_parameter():
    circuit = build_circuit(modes=3, layers=2)
    free = set(circuit.program.free_params)
    expected = set(circuit.latent_names)
    for group, size in circuit.group_sizes.items():
        for layer in range(2):
            expected |= {circuit.parameter_name(group, layer, index) for index in range(size)}
    assert free == expected
    assert circuit.group_sizes["int1_theta"] == 3
    assert circuit.group_sizes["squeeze"] == 3
    for command in circuit.program.circuit:
        if isinstance(command.op, (ops.Sgate, ops.Dgate)):
            assert command.op.p[1] == 0.0  # real squeezing and displacement


def test_reuploading_displaces_the_latent_code_before_every_layer():
    circuit = build_circuit(modes=2, layers=3, reupload=True)
    assert circuit.encodings == 3
    assert circuit.latent_names == (
        "latent_0",
        "latent_1",
        "latent_1_0",
        "latent_1_1",
        "latent_2_0",
        "latent_2_1",
    )
    commands = list(circuit.program.circuit)
    layer_length = 12
    for layer in range(3):
        encoding = commands[layer * (2 + layer_length) : layer * (2 + layer_length) + 2]
        assert [type(command.op).__name__ for command in encoding] == ["Dgate", "Dgate"]
        assert [command.op.p[0].name for command in encoding] == [
            circuit.latent_name(layer, 0),
            circuit.latent_name(layer, 1),
        ]
        assert [command.reg[0].ind for command in encoding] == [0, 1]
    assert len(commands) == 3 * (2 + layer_length)
