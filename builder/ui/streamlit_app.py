"""The script ``dockyard ui`` hands to ``streamlit run``: it ships inside the package, so the
command works from a plain ``pip install`` (the repository's ``app.py`` does the same from a
checkout, for ``streamlit run app.py``)."""

from __future__ import annotations

from builder.ui.main import main

main()
