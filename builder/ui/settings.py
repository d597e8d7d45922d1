"""Pipeline-wide settings: the description and the params (``{{ name }}`` in SQL and params).

A param value is typed as YAML: ``2024-01-01`` is a date, ``5`` a number, ``{env: SALT}`` reads
the environment variable SALT at run time (secrets stay out of the file). Renaming or deleting
a param that steps use is refused and names the steps (see :mod:`builder.pipeline.edit`).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder.errors import ConfigError
from builder.pipeline import edit
from builder.pipeline.model import Pipeline
from builder.pipeline.yamlio import dumps
from builder.ui import state
from builder.ui.messages import action


def value_text(value: Any) -> str:
    """A param value as the user types it back (``param_value`` reads it the same)."""
    text = dumps(value).strip()
    return text[:-3].strip() if text.endswith("...") else text


@action
def _set_description(k: str) -> None:
    p = state.pipeline()
    assert p is not None
    p.description = str(st.session_state.get(k) or "").strip() or None


@action
def _rename(old: str, k: str) -> None:
    p = state.pipeline()
    assert p is not None
    new = str(st.session_state.get(k) or "").strip()
    edit.set_param(p, new, p.params[old], old=old)
    state.bump()


@action
def _set_value(name: str, k: str) -> None:
    p = state.pipeline()
    assert p is not None
    edit.set_param(p, name, edit.param_value(str(st.session_state.get(k) or ""), name))


@action
def _delete(name: str) -> None:
    p = state.pipeline()
    assert p is not None
    edit.delete_param(p, name)
    state.bump()


@action
def _add(name_key: str, value_key: str) -> None:
    p = state.pipeline()
    assert p is not None
    name = str(st.session_state.get(name_key) or "").strip()
    if name in p.params:
        raise ConfigError(f"the pipeline already has a param '{name}': change its value "
                               "above.")
    edit.set_param(p, name, edit.param_value(str(st.session_state.get(value_key) or ""), name))
    st.session_state[name_key] = ""
    st.session_state[value_key] = ""
    state.flash("success", f"Added param '{name}': use it as {{{{ {name} }}}}.")


def draw(p: Pipeline) -> None:
    """The pipeline's description and params (an expander above the graph)."""
    label = "Pipeline settings: description, params" + (
        f" ({', '.join(p.params)})" if p.params else "")
    with st.expander(label):
        k = state.key("pipeline_desc")
        if k not in st.session_state:
            st.session_state[k] = p.description or ""
        st.text_input("Description", key=k, on_change=_set_description, args=(k,),
                      placeholder="what this pipeline produces (optional)")
        st.markdown("**Params** — use them as `{{ name }}` in SQL and in step params; "
                    "`dockyard run --set name=value` overrides them.")
        for name, value in list(p.params.items()):
            c1, c2, c3 = st.columns([2, 3, 1], vertical_alignment="bottom")
            nk, vk = state.key("param_name", name), state.key("param_value", name)
            if nk not in st.session_state:
                st.session_state[nk] = name
                st.session_state[vk] = value_text(value)
            users = edit.param_users(p, name)
            c1.text_input("Name", key=nk, on_change=_rename, args=(name, nk))
            c2.text_input("Value", key=vk, on_change=_set_value, args=(name, vk),
                          help="Text, a number, a date (2024-01-01) or {env: VARIABLE} to read "
                          "an environment variable at run time.")
            c3.button("Delete", key=state.key("param_del", name), on_click=_delete,
                      args=(name,), help=("Used by " + ", ".join(users)) if users else
                      "Not used by any step yet.")
        c1, c2, c3 = st.columns([2, 3, 1], vertical_alignment="bottom")
        c1.text_input("New param", key="dy_param_new_name", placeholder="min_day")
        c2.text_input("Its value", key="dy_param_new_value", placeholder="2024-01-01")
        c3.button("Add param", key="dy_param_add", on_click=_add,
                  args=("dy_param_new_name", "dy_param_new_value"))
