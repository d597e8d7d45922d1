"""The project's warehouse: staging tables, their registry, run history, browsing."""
