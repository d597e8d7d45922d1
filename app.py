"""Dockyard's browser app: ``dockyard ui`` (or ``streamlit run app.py``).

The app is a thin shell: the page is drawn by :mod:`builder.ui`, which only calls the library
(model, compiler, previewer, api). Pipelines are saved in saved_pipelines/ (or the folder in
$DOCKYARD_PIPELINES_DIR) in the same YAML format the CLI runs.
"""

from __future__ import annotations

from builder.ui.main import main

main()
