"""One run of a pipeline: the run lock, the engine, the outputs, then the run history.

- :mod:`builder.runner.run`: :func:`~builder.runner.run.run` (a run spec on an engine) and
  :class:`~builder.runner.run.RunStore`, what a run needs of the warehouse;
- :mod:`builder.runner.pipelines`: planning and running pipelines by name of engine, and the
  pipelines a pipeline reads from first (``--upstream``);
- :mod:`builder.runner.lock`: one run of a pipeline at a time;
- :mod:`builder.runner.cache`: an unchanged pipeline's run spec, kept so it is not planned again.

The runner sits above the engines and below the warehouse: the warehouse's store reaches it as
a ``RunStore`` argument. Nothing is imported here: a run from the run cache imports only
``run``, ``lock`` and ``cache``, never the planner.
"""
