"""From a pipeline to a plan: graph, sources, typing, SQL checks, compiled SQL, lineage."""
