"""One registry class for every kind of named component.

Example:
```python
from official.base.registry import Registry
BLOCKS = Registry("block")

@BLOCKS.register("plain")
def plain_block():
    return "plain"

assert BLOCKS.get("plain")() == "plain"
```
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from official.base.suggest import did_you_mean


def unknown_name_error(kind: str, name: Any, valid: Iterable[Any]) -> KeyError:
    """Builds the error for a name that is not registered.

    The message names the kind, echoes the name received, suggests the closest
    registered name and lists all of them.
    """
    valid = sorted(str(v) for v in valid)
    hint = did_you_mean(name, valid)
    listed = ", ".join(valid) if valid else "(none)"
    return KeyError(f"Unknown {kind} {name!r}.{hint} Registered: {listed}.")


def _where(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    qualname = getattr(obj, "__qualname__", repr(obj))
    try:
        line = inspect.getsourcelines(obj)[1]
        return f"{module}.{qualname} (line {line})"
    except (OSError, TypeError):
        return f"{module}.{qualname}"


class Registry:
    """Maps names to objects (classes, functions) of one kind.

    Registering a name twice is an error naming both definitions; looking up
    an unknown name is an error listing the registered names and the closest
    match.

    Args:
        kind: str, what the registry holds ("backbone", "experiment", ...),
            used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[Hashable, Any] = {}

    def register(self, name: Hashable) -> Callable[[Any], Any]:
        """Returns a decorator that registers its argument under `name`."""

        def decorator(obj: Any) -> Any:
            if name in self._entries:
                previous = self._entries[name]
                if _where(previous) == _where(obj):
                    # The same definition imported twice (e.g. module reloaded).
                    self._entries[name] = obj
                    return obj
                raise ValueError(
                    f"Duplicate {self.kind} name {self._display(name)!r}: already "
                    f"registered by {_where(previous)}, registered again by "
                    f"{_where(obj)}."
                )
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: Hashable) -> Any:
        """Returns the object registered under `name`."""
        try:
            return self._entries[name]
        except KeyError:
            raise unknown_name_error(
                self.kind,
                self._display(name),
                [self._display(k) for k in self._entries],
            ) from None

    def names(self) -> list:
        """The registered names, sorted by their display form."""
        return sorted(self._entries, key=self._display)

    def items(self) -> list:
        return [(k, self._entries[k]) for k in self.names()]

    def __contains__(self, name: Hashable) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _display(name: Hashable) -> str:
        return name.__name__ if isinstance(name, type) else str(name)
