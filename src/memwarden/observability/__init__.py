"""Alerts, the integrity scan and the retrieval harness."""
