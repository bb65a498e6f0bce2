"""A transparency log's pieces, standalone: RFC 6962 Merkle proofs, C2SP signed notes and
checkpoints, and the offline check of memwarden's evidence documents.

This package imports nothing else of memwarden (only the standard library and
``cryptography``), so an auditor can copy it out and run ``python -m tlog verify FILE --key
KEY`` (or ``python -m memwarden.tlog ...`` where memwarden is installed) with only the public key.
"""
