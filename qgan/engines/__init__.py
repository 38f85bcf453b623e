"""Engines that run a Strawberry Fields program and return its x-quadrature means and trace."""

from __future__ import annotations

from qgan.engines.base import Engine, EngineOutput, TableEntry
from qgan.engines.fock_engine import FockEngine
from qgan.engines.fock_program import UnsupportedOperationError
from qgan.engines.sf_engine import StrawberryFieldsEngine

ENGINES = {"fock": FockEngine, "sf": StrawberryFieldsEngine}


def make_engine(name: str, cutoff: int) -> Engine:
    """Creates the engine called `name` (one of ENGINES) for the given Fock cutoff."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; allowed: {', '.join(sorted(ENGINES))}")
    return ENGINES[name](cutoff=cutoff)


__all__ = [
    "ENGINES",
    "Engine",
    "EngineOutput",
    "FockEngine",
    "StrawberryFieldsEngine",
    "TableEntry",
    "UnsupportedOperationError",
    "make_engine",
]
