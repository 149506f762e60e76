"""gc_paused: the cyclic collector is off inside, back as it was outside; what the pause made is
handed to the oldest generation (no young collection walks it) and is still collected when it
becomes garbage; objects someone else froze stay frozen."""

from __future__ import annotations

import gc
import weakref

from hubpress.sources.discovery import gc_paused


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_what_a_pause_made_is_old_and_still_collected():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert any(obj is a for obj in gc.get_objects(generation=2))
    gone = weakref.ref(a)
    del a, b
    gc.collect(0)
    assert gone() is not None  # a young collection does not walk it ...
    gc.collect()
    assert gone() is None  # ... a full one does


def test_a_pause_inside_a_pause_and_a_disabled_collector_are_left_as_they_were():
    gc.disable()
    try:
        with gc_paused():
            with gc_paused():
                pass
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_objects_someone_froze_stay_frozen():
    kept = Node()
    gc.freeze()
    try:
        with gc_paused():
            Node()
        assert gc.get_freeze_count() > 0
        assert not any(obj is kept for obj in gc.get_objects())  # still in the permanent generation
    finally:
        gc.unfreeze()
    assert any(obj is kept for obj in gc.get_objects())
