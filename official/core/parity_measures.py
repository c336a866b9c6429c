"""What "an exported artifact agrees with the Keras model" means: the protocol.

The exporter (`serving/parity.py`) runs the same validation examples through
the Keras model (the reference) and through every artifact, then asks the task
three questions through its parity hooks (`Task.parity_measures`,
`Task.parity_reference_measures`, `Task.parity_tolerance`):

1. which numbers describe an artifact's outputs against the reference's (and
   against the labels): a flat `{measure_name: float}` dict;
2. which numbers describe the reference alone (its accuracy, for the report);
3. what each artifact kind must meet: a tolerance object, a frozen dataclass
   with a `check(measures) -> list[str]` method returning one message per
   violated bound (empty: it passes). `dataclasses.asdict(tolerance)` goes
   into `parity.json`.

Artifact kinds (`ARTIFACT_KINDS`): `saved_model`, `none` (float32 .tflite),
`float16`, `dynamic`, `int8` (full integer .tflite, whatever its input/output
types) and `onnx`.

This module holds what every task shares: `Bounds`, a tolerance made of named
upper and lower bounds, and `tolerance_of_kind`, the lookup of a task's
tolerance table. The measures and tolerances of a task family live beside its
task (`official/vision/tasks/classification_parity.py`,
`official/vision/tasks/segmentation_parity.py`).

Example:
```python
from official.core import parity_measures

tolerances = {"saved_model": parity_measures.Bounds(minimum={"agreement": 0.99})}
tolerance = parity_measures.tolerance_of_kind(tolerances, "saved_model", "toy")
assert tolerance.check({"agreement": 0.98}) == ["agreement 0.98 < 0.99"]
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from official.base.suggest import did_you_mean

ARTIFACT_KINDS = ("saved_model", "none", "float16", "dynamic", "int8", "onnx")

T = TypeVar("T")


class ParityTolerance(Protocol):
    """What a tolerance returned by `Task.parity_tolerance` provides.

    It is a (frozen) dataclass, so that `dataclasses.asdict` can write it to
    `parity.json`, with a `check` method.
    """

    def check(self, measures: Mapping[str, Any]) -> list[str]:
        """One message per bound that `measures` violates; empty: it passes."""


@dataclasses.dataclass(frozen=True)
class Bounds:
    """A tolerance made of upper and lower bounds on named measures.

    Args:
        maximum: `{measure: bound}`; the measure must be <= bound.
        minimum: `{measure: bound}`; the measure must be >= bound.

    A measure that is missing (or NaN) violates its bound.

    Example:
    ```python
    from official.core.parity_measures import Bounds

    tolerance = Bounds(maximum={"miou_drop": 0.02}, minimum={"pixel_agreement": 0.99})
    assert tolerance.check({"miou_drop": 0.0, "pixel_agreement": 0.995}) == []
    assert tolerance.check({"miou_drop": 0.1, "pixel_agreement": 1.0}) == [
        "miou_drop 0.1 > 0.02"
    ]
    ```
    """

    maximum: dict[str, float] = dataclasses.field(default_factory=dict)
    minimum: dict[str, float] = dataclasses.field(default_factory=dict)

    def check(self, measures: Mapping[str, Any]) -> list[str]:
        """One message per violated bound."""
        failures = []
        for name, bound in self.maximum.items():
            value = measures.get(name)
            if value is None:
                failures.append(f"no measure {name!r} to compare")
            elif not value <= bound:
                failures.append(f"{name} {value:.3g} > {bound:g}")
        for name, bound in self.minimum.items():
            value = measures.get(name)
            if value is None:
                failures.append(f"no measure {name!r} to compare")
            elif not value >= bound:
                failures.append(f"{name} {value:.3g} < {bound:g}")
        return failures


def tolerance_of_kind(tolerances: Mapping[str, T], kind: str, family: str) -> T:
    """`tolerances[kind]`; a KeyError naming the known kinds otherwise.

    Args:
        tolerances: a task family's `{artifact kind: tolerance}` table.
        kind: the artifact kind (one of `ARTIFACT_KINDS`).
        family: the task family, for the message (e.g. "classification").
    """
    if kind not in tolerances:
        valid = sorted(tolerances)
        raise KeyError(
            f"No {family} parity tolerance for artifact kind {kind!r}."
            f"{did_you_mean(kind, valid)} Known: {', '.join(valid)}."
        )
    return tolerances[kind]
