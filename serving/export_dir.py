"""The export directory: checks before any work, sizes, and the atomic move.

`serving.export` writes everything into a hidden temporary directory beside
`export_dir` and, once every artifact is checked, renames it into place with
`move_into_place` (a previous export there is replaced only then).
"""

from __future__ import annotations

import os
import shutil
import tempfile

REPORT_FILE = "export_report.json"


def check_export_dir(export_dir: str) -> None:
    """Only an empty directory or a previous export may be replaced."""
    if not export_dir:
        raise ValueError("export_dir must be set, e.g. --export_dir=/tmp/export.")
    if os.path.isdir(export_dir):
        if os.listdir(export_dir) and not os.path.exists(
            os.path.join(export_dir, REPORT_FILE)
        ):
            raise FileExistsError(
                f"export_dir {export_dir!r} exists and is not an export (no "
                f"{REPORT_FILE}); refusing to replace it. Pass a new --export_dir "
                f"or remove that directory."
            )
    elif os.path.exists(export_dir):
        raise FileExistsError(
            f"export_dir {export_dir!r} exists and is not a directory."
        )
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"Cannot write into {parent!r}, the parent of export_dir "
            f"{export_dir!r}. Choose a --export_dir in a writable place."
        )


def check_free_space(export_dir: str, model_bytes: int, num_tflite: int) -> None:
    """Fails early when the export cannot fit beside `export_dir`.

    The estimate is the weights' size times (2 SavedModels + each .tflite
    file), doubled for the temporary copies made while checking.
    """
    parent = os.path.dirname(os.path.abspath(export_dir))
    needed = 2 * model_bytes * (2 + num_tflite)
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise OSError(
            f"Not enough free space in {parent!r} for the export: about "
            f"{needed / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free."
        )


def move_into_place(tmp_dir: str, export_dir: str) -> None:
    """Renames `tmp_dir` to `export_dir`, replacing a previous export."""
    if not os.path.exists(export_dir):
        os.rename(tmp_dir, export_dir)
        return
    old = tempfile.mkdtemp(
        prefix=f".{os.path.basename(export_dir)}.old-", dir=os.path.dirname(export_dir)
    )
    os.rmdir(old)  # Only the unique name is wanted.
    os.rename(export_dir, old)
    try:
        os.rename(tmp_dir, export_dir)
    except OSError:
        os.rename(old, export_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def size(path: str) -> int:
    """Bytes of a file, or of every file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )
