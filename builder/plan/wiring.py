"""Wiring steps on the canvas: an input added by drawing an edge, removed by deleting one.

These edits need the patterns (how many inputs a pattern takes), which belong to the plan
layer, so they live here rather than in :mod:`builder.pipeline.edit`.
"""

from __future__ import annotations

from builder.errors import ConfigError
from builder.pipeline.edit import check_inputs_exist, input_candidates
from builder.pipeline.model import Pipeline
from patterns import PATTERNS
from patterns.base import ARITY_N


def add_input(pipeline: Pipeline, step_id: str, node: str) -> None:
    """Make pattern step ``step_id`` also read ``node`` (an edge drawn on the canvas).

    Refused, with a one-line reason, when the target is not a pattern step, the edge would make
    a cycle, the step already reads ``node``, or the step already has all the inputs its
    pattern takes.
    """
    if step_id in pipeline.sources:
        raise ConfigError(f"'{step_id}' is a source: sources read files or tables, not other "
                          "nodes. Draw the edge into a step.")
    if step_id not in pipeline.step_ids():
        raise ConfigError(f"'{step_id}' is not a step of this pipeline.")
    check_inputs_exist(pipeline, [node])
    step = pipeline.step(step_id)
    if step.sql is not None:
        raise ConfigError(f"step '{step_id}' is a SQL step: it reads the tables its SQL names. "
                          f"Write '{node}' in its FROM or JOIN instead.")
    current = list(step.inputs or [])
    if node in current:
        raise ConfigError(f"step '{step_id}' already reads '{node}'.")
    if node not in input_candidates(pipeline, step_id):
        raise ConfigError(f"step '{step_id}' cannot read '{node}': '{node}' depends on "
                          f"'{step_id}', so the pipeline would go round in a cycle.")
    pattern = PATTERNS.get(step.pattern) if step.pattern and step.pattern in PATTERNS else None
    if pattern is not None and pattern.arity != ARITY_N and len(current) >= int(pattern.arity):
        reads_ = ", ".join(f"'{i}'" for i in current) or "nothing"
        raise ConfigError(f"step '{step_id}' ({pattern.name}) takes {pattern.arity_text()} and "
                          f"already reads {reads_}: remove an input first.")
    step.inputs = current + [node]


def remove_input(pipeline: Pipeline, step_id: str, node: str) -> None:
    """Stop pattern step ``step_id`` reading ``node`` (an edge deleted on the canvas)."""
    if step_id not in pipeline.step_ids():
        raise ConfigError(f"'{step_id}' is not a step of this pipeline.")
    step = pipeline.step(step_id)
    if step.sql is not None:
        raise ConfigError(f"step '{step_id}' is a SQL step: it reads the tables its SQL names. "
                          f"Remove '{node}' from its SQL instead.")
    if node not in (step.inputs or []):
        raise ConfigError(f"step '{step_id}' does not read '{node}'.")
    step.inputs = [i for i in step.inputs or [] if i != node]


# ---- reading the graph without compiling -------------------------------------------------
