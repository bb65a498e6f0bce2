"""Storage: tables, engines, migrations and the store that owns connections and transactions."""
