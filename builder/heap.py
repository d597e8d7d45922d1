"""The Python garbage collector kept off the objects Dockyard's imports leave behind.

CPython's cycle collector runs a full collection each time the objects created since the last
one reach a quarter of the heap, and a full collection walks *every* tracked object. Dockyard's
imports leave about 110k of them (sqlglot, pydantic, networkx, DuckDB; the app adds streamlit
and pandas), so a 500-step plan, which creates about 36k sqlglot nodes and dicts, paid one full
collection of 100-150 ms, and a 50-step plan none: typing grew faster than the number of steps.

:func:`frozen_heap` moves the objects that exist when planning starts into the collector's
permanent generation (``gc.freeze``, a list splice: microseconds), so collections during the
plan walk only what the plan created; ``gc.unfreeze`` puts them back when it ends. Nothing is
lost: objects created inside are collected as usual, and a frozen object that died meanwhile is
collected after the thaw.

:func:`for_a_command` is the command line's own policy (its process only, set by
``builder.cli.main.entry``): the same imports made the collector walk the growing heap again and
again while they loaded: 0.18 s of ``dockyard validate``'s start-up of about 1 s.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # plans inside frozen_heap now (the app plans in one thread per session)
_ours = False  # whether the current freeze is ours to undo


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze the existing heap for the duration (nested and concurrent uses share one freeze).

    A process that froze its heap itself (a server that forks workers after its imports) is left
    alone: thawing would undo its freeze.
    """
    global _depth, _ours
    with _lock:
        if _depth == 0:
            _ours = gc.get_freeze_count() == 0
            if _ours:
                gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _ours:
                gc.unfreeze()
                _ours = False


# Young objects are collected after this many allocations (CPython's default is 700).
COMMAND_THRESHOLD = 100_000


def for_a_command() -> None:
    """Set the collector up for a short-lived command (never for a process Dockyard is a guest
    in, such as a test runner or a notebook).

    With the default thresholds, the ~110k objects the imports create were walked by several
    full collections while they loaded: ``dockyard validate`` took 993 ms, against 817 ms with
    young collections every 100k allocations (median of 14 interleaved runs). Full collections
    then come only after millions of allocations, which a command does not make; cyclic garbage
    waits for at most 100k allocations (a few MB) before it is freed.
    """
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(COMMAND_THRESHOLD, gen1, gen2)
