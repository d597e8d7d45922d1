"""``python -m builder.cli``: the same as the ``dockyard`` command."""

from builder.cli.main import entry

entry()
