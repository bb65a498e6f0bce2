"""The domain: memories and their lifecycle, projects and their state, ingest, recall."""
