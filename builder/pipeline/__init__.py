"""The pipeline file: its model, YAML reading and writing, params, edits, the project."""
