"""The groups of methods ``Memwarden`` (core/service.py) is assembled from, one per concept.

Each module holds one group: a mixin of thin methods that check access, charge the write
rate, call the concept's own module (``core/memories.py``, ``core/recall.py``, ...) and
record who was served what. No logic lives here that a concept module could own, and no
module below the facade imports this package. See docs/architecture.md, "The facade".
"""
