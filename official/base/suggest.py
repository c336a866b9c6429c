"""The one "did you mean" helper behind every unknown-name error.

Example:
```python
from official.base.suggest import did_you_mean
assert did_you_mean("resnt", ["resnet", "vit"]) == " Did you mean 'resnet'?"
assert did_you_mean("zzz", ["resnet", "vit"]) == ""
```
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

# How alike (difflib ratio) a valid name must be to be suggested.
CUTOFF = 0.5


def closest(name: Any, valid: Iterable[Any]) -> str | None:
    """The valid name closest to `name`, or None when none is close."""
    matches = difflib.get_close_matches(
        str(name), [str(v) for v in valid], n=1, cutoff=CUTOFF
    )
    return matches[0] if matches else None


def did_you_mean(name: Any, valid: Iterable[Any]) -> str:
    """`" Did you mean 'x'?"` for the closest valid name, else `""`."""
    match = closest(name, valid)
    return f" Did you mean {match!r}?" if match else ""
