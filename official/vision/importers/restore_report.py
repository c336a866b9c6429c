"""What an importer did with every variable: matched, missing, skipped, unused."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class RestoreReport:
    """The outcome of importing foreign weights into a Garden model.

    Args:
        source: str, what was read (a file path or a model's name).
        architecture: str, the architecture key the mapping table used.
        matched: list of `(garden_path, source_path, shape)`, one per Garden
            variable that received a value.
        missing: list of `(garden_path, reason)`, Garden variables the source
            has no value for; they keep their initial values.
        skipped_by_shape: list of `(garden_path, source_path, garden_shape,
            source_shape)`, pairs the table maps but whose shapes differ; the
            Garden variable keeps its initial value.
        unused: list of `(source_path, reason)`, source weights no Garden
            variable takes.
        notes: list of str, facts that do not change inference outputs but
            matter for fine-tuning (preprocessing, batch-norm momentum).

    Example:
    ```python
    from official.vision.importers.restore_report import RestoreReport

    report = RestoreReport("w.weights.h5", "mobilenet_v2")
    report.matched.append(("stem_conv/conv/kernel", "Conv1/kernel", (3, 3, 3, 16)))
    report.missing.append(("head/logits/kernel", "no 'predictions' layer"))
    assert report.summary().startswith("Imported mobilenet_v2 from w.weights.h5: 1/2")
    ```
    """

    source: str
    architecture: str
    matched: list = dataclasses.field(default_factory=list)
    missing: list = dataclasses.field(default_factory=list)
    skipped_by_shape: list = dataclasses.field(default_factory=list)
    unused: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    def summary(self, limit: int = 10) -> str:
        """A few lines for logs: counts, then up to `limit` of each problem."""
        total = len(self.matched) + len(self.missing) + len(self.skipped_by_shape)
        lines = [
            f"Imported {self.architecture} from {self.source}: "
            f"{len(self.matched)}/{total} Garden variables matched, "
            f"{len(self.missing)} missing, {len(self.skipped_by_shape)} skipped "
            f"by shape, {len(self.unused)} source weights unused."
        ]
        for title, rows in (
            (
                "missing (kept initial values)",
                [f"{g} ({why})" for g, why in self.missing],
            ),
            (
                "skipped by shape",
                [f"{g} {gs} <- {s} {ss}" for g, s, gs, ss in self.skipped_by_shape],
            ),
            ("unused", [f"{s} ({why})" for s, why in self.unused]),
        ):
            if rows:
                more = f" ... and {len(rows) - limit} more" if len(rows) > limit else ""
                lines.append(f"  {title}: " + "; ".join(rows[:limit]) + more)
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready: lists of dicts, shapes as lists."""
        return {
            "source": self.source,
            "architecture": self.architecture,
            "matched": [
                {"garden": g, "source": s, "shape": list(shape)}
                for g, s, shape in self.matched
            ],
            "missing": [{"garden": g, "reason": why} for g, why in self.missing],
            "skipped_by_shape": [
                {
                    "garden": g,
                    "source": s,
                    "garden_shape": list(gs),
                    "source_shape": list(ss),
                }
                for g, s, gs, ss in self.skipped_by_shape
            ],
            "unused": [{"source": s, "reason": why} for s, why in self.unused],
            "notes": list(self.notes),
        }


class WeightImportError(ValueError):
    """The source does not fit the Garden model; nothing was assigned.

    `report` holds the full comparison that led to the refusal.
    """

    def __init__(self, message: str, report: RestoreReport | None = None):
        super().__init__(message)
        self.report = report
