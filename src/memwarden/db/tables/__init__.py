"""The tables of each concept apart from the core ones (``db/schema.py``), one module per
concept; ``memwarden.db.schema`` re-exports every name."""
