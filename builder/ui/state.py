"""Session state: the pipeline model itself, where it lives on disk, and what was saved.

``st.session_state`` holds the :class:`~builder.pipeline.model.Pipeline` object the library works on,
not a copy in another shape: every widget writes straight into it and the YAML, the DAG and the
previews are derived from it on each rerun. Unsaved changes are found by comparing the YAML the
model dumps to now with the YAML on disk when it was loaded or saved (the file's fingerprint).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from builder.engines.preview import Previewer
from builder.pipeline.model import Pipeline, dump

# A checkout (the repository, e.g. ``bash scripts/start.sh``) keeps its example pipelines in
# saved_pipelines/ beside the package; an installed package lives in site-packages, so the app
# works in the folder it was started from instead.
_CHECKOUT = Path(__file__).resolve().parent.parent.parent
ROOT = _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()
PIPELINES_ENV = "DOCKYARD_PIPELINES_DIR"
UPLOADS = Path("data") / "uploads"

# Keys of st.session_state this package owns.
PIPELINE = "dy_pipeline"
SAVED_TEXT = "dy_saved_text"       # the YAML on disk at load/save time (None: never saved)
DISK_TEXT = "dy_disk_text"         # the file's exact text when loaded or saved (conflicts)
GENERATION = "dy_generation"       # bumped when the model changes outside the widgets
PREVIEWER = "dy_previewer"
SELECTED = "dy_selected"           # the node being inspected (the selectbox's key)
# The same, outside any widget: Streamlit drops a widget's state when a rerun interrupts the run
# before the widget is drawn (e.g. the canvas reporting while the page is drawn after a
# preview) and the widget's options changed meanwhile; the selection then comes from here.
SELECTED_KEPT = "dy_selected_kept"
FLASH = "dy_flash"                 # one-shot messages shown on the next rerun
PREVIEW = "dy_preview"             # the last preview shown (see builder.ui.preview)
RUN = "dy_run"                     # the last run's summary (see builder.ui.runner)


def pipelines_dir() -> Path:
    """The folder pipelines are saved in: $DOCKYARD_PIPELINES_DIR, else saved_pipelines/ in the
    repository (a checkout) or in the folder the app was started from (an installed package)."""
    folder = Path(os.environ.get(PIPELINES_ENV) or ROOT / "saved_pipelines")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pipeline() -> Pipeline | None:
    """The pipeline being edited (None before one is loaded or created)."""
    return st.session_state.get(PIPELINE)


def set_pipeline(p: Pipeline, saved_text: str | None, disk: str | None = None) -> None:
    """Make ``p`` the pipeline being edited; ``saved_text`` is its YAML on disk (or None),
    ``disk`` the file's exact text (to notice when someone else changes the file)."""
    st.session_state[PIPELINE] = p
    st.session_state[SAVED_TEXT] = saved_text
    st.session_state[DISK_TEXT] = disk
    st.session_state.pop(PREVIEW, None)
    st.session_state.pop(RUN, None)
    bump()
    nodes = p.node_ids()
    st.session_state[SELECTED] = p.steps[-1].id if p.steps else (nodes[0] if nodes else None)


def mark_saved(p: Pipeline, disk: str | None = None) -> None:
    """``p`` was saved; ``disk`` is the text written (with the file's comments kept), if not
    plain ``dump(p)``."""
    st.session_state[SAVED_TEXT] = dump(p)
    st.session_state[DISK_TEXT] = disk if disk is not None else st.session_state[SAVED_TEXT]


def disk_text() -> str | None:
    """The file's text when it was loaded or last saved here (None: not from a file)."""
    return st.session_state.get(DISK_TEXT)


def is_dirty(p: Pipeline) -> bool:
    """True when the model differs from the file it was loaded from or saved to."""
    saved = st.session_state.get(SAVED_TEXT)
    return saved is None or dump(p) != saved


def never_saved() -> bool:
    return st.session_state.get(SAVED_TEXT) is None


def bump() -> None:
    """Start fresh widget keys: values are read from the model again (after load, rename)."""
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1


def initial(k: str, value: Any) -> str:
    """Give widget ``k`` its first value from the model (later reruns keep what the user set);
    returns ``k``."""
    if k not in st.session_state:
        st.session_state[k] = value
    return k


def key(*parts: object) -> str:
    """A widget key tied to the current generation."""
    return f"g{st.session_state.get(GENERATION, 0)}:" + ":".join(str(p) for p in parts)


def previewer() -> Previewer:
    """The session's one Previewer: its cache of results survives reruns."""
    pv = st.session_state.get(PREVIEWER)
    if pv is None:
        pv = Previewer(extra_dirs=(str(pipelines_dir().resolve()),))
        st.session_state[PREVIEWER] = pv
    return pv  # type: ignore[no-any-return]


def selected() -> str | None:
    node = st.session_state.get(SELECTED)
    return node if node is not None else st.session_state.get(SELECTED_KEPT)


def select(node: str | None) -> None:
    st.session_state[SELECTED] = node
    st.session_state[SELECTED_KEPT] = node


def keep_selection() -> None:
    """Remember what the Inspect box shows (after it is drawn: the user may have changed it)."""
    st.session_state[SELECTED_KEPT] = st.session_state.get(SELECTED)


@dataclass
class Flash:
    level: str  # success | info | warning | error
    text: str


def flash(level: str, text: str) -> None:
    """Queue a message for the next rerun (callbacks run before the page is drawn)."""
    st.session_state.setdefault(FLASH, []).append(Flash(level, text))


def show_flashes() -> None:
    """The queued messages, in one container drawn even when empty (see
    :func:`builder.ui.messages.messages`: the page after it keeps its place)."""
    with st.container():
        for f in st.session_state.pop(FLASH, []):
            getattr(st, f.level)(f.text)


def get(name: str, default: Any = None) -> Any:
    return st.session_state.get(name, default)
