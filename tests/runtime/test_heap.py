"""freeze_imports: garbage is collected first, then what is alive leaves the collector's walks."""

import gc
import weakref

from qgan.runtime.heap import freeze_imports


class Node:
    """A plain object the collector tracks."""


def test_garbage_cycles_are_collected_and_live_objects_frozen():
    alive = Node()
    cycle = Node()
    cycle.itself = cycle
    cycle_alive = weakref.ref(cycle)
    del cycle
    assert any(tracked is alive for tracked in gc.get_objects())
    frozen_before = gc.get_freeze_count()

    freeze_imports()

    assert cycle_alive() is None  # collected, not frozen for the rest of the process
    assert not any(tracked is alive for tracked in gc.get_objects())  # in the permanent generation
    assert gc.get_freeze_count() > frozen_before
