"""Dockyard: reusable data-flow pattern blocks plus your own SQL, as pipelines in YAML.

The path of a pipeline through the code: file (:mod:`builder.pipeline.model`) -> graph validation
(:mod:`builder.plan.graph`) -> compile and type (:mod:`builder.plan.compiler`) -> engine
(:mod:`builder.engines`) -> outputs. :mod:`builder.api` is the library's front door.
"""

from __future__ import annotations

__version__ = "0.1.0"
