"""The registry of patterns: names to modules, imported when first needed."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator

from builder.errors import did_you_mean
from patterns.base import CAPABILITIES, CATEGORIES, Pattern


class Registry:
    """The patterns by name; refuses duplicate names.

    Entries are Pattern objects or names of modules in this package (``"sessionize"`` for
    ``patterns/sessionize.py``). A module is imported the first time its pattern is needed:
    building its param model costs ~8 ms, and a pipeline uses a handful of the 38 patterns,
    so ``dockyard validate`` does not pay for the whole palette at start-up.

    ``providers`` names the pattern that provides each capability the catalog uses (see
    :data:`~patterns.base.CAPABILITIES`); that pattern must declare it in ``provides``.
    """

    def __init__(self, patterns: Iterable[Pattern | str] = (),
                 providers: dict[str, str] | None = None) -> None:
        self._patterns: dict[str, Pattern | None] = {}
        for p in patterns:
            self.register(p)
        self._providers = dict(providers or {})
        for capability, name in self._providers.items():
            if capability not in CAPABILITIES:
                raise ValueError(f"unknown capability '{capability}'."
                                 + did_you_mean(capability, CAPABILITIES))
            if name not in self._patterns:
                raise ValueError(f"capability '{capability}': pattern '{name}' is not registered")

    def register(self, pattern: Pattern | str) -> None:
        name = pattern if isinstance(pattern, str) else pattern.name
        if name in self._patterns:
            raise ValueError(f"pattern '{name}' is registered twice")
        self._patterns[name] = None if isinstance(pattern, str) else pattern

    def get(self, name: str) -> Pattern:
        found = self._patterns[name]
        if found is None:
            module = importlib.import_module(f"{__package__}.{name}")
            found = getattr(module, "PATTERN", None)
            if not isinstance(found, Pattern) or found.name != name:
                raise ValueError(f"patterns/{name}.py must declare PATTERN = Pattern(name="
                                 f"'{name}', ...)")
            self._patterns[name] = found
        return found

    def provider(self, capability: str) -> Pattern:
        """The pattern that provides ``capability`` to the catalog (e.g. ``"checks"``)."""
        if capability not in self._providers:
            raise ValueError(f"no pattern provides the capability '{capability}'")
        found = self.get(self._providers[capability])
        if capability not in found.provides:
            raise ValueError(f"pattern '{found.name}' is registered for the capability "
                             f"'{capability}' but does not declare it in 'provides'")
        return found

    def capabilities(self) -> dict[str, str]:
        """Each capability and the name of the pattern that provides it."""
        return dict(self._providers)

    def __contains__(self, name: object) -> bool:
        return name in self._patterns

    def __iter__(self) -> Iterator[Pattern]:
        return iter([self.get(name) for name in self._patterns])

    def __len__(self) -> int:
        return len(self._patterns)

    def names(self) -> list[str]:
        return list(self._patterns)

    def suggest(self, name: str) -> str:
        return did_you_mean(name, self._patterns)

    def by_category(self) -> dict[str, list[Pattern]]:
        out: dict[str, list[Pattern]] = {c: [] for c in CATEGORIES}
        for p in self:
            out[p.category].append(p)
        return {c: ps for c, ps in out.items() if ps}
