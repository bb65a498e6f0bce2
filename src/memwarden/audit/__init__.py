"""The mutation ledger (tamper-evident, rewindable) and the operation log."""
