"""The engine contract: every registered engine but the reference is held to Strawberry Fields."""

import pytest

from qgan.engines import ENGINES

REFERENCE = "sf"


@pytest.fixture(params=sorted(name for name in ENGINES if name != REFERENCE))
def candidate_engine(request):
    """Each registered engine class but the reference; registering a new engine in qgan.engines.ENGINES
    gives it every agreement test that takes this fixture."""
    return ENGINES[request.param]


@pytest.fixture
def reference_engine():
    """Strawberry Fields' own tf backend, the reference every engine must agree with."""
    return ENGINES[REFERENCE]
