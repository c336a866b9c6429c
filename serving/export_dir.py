"""The export directory: checks before any work, sizes, and the atomic move.

`serving.export` writes everything into a hidden temporary directory beside
`export_dir` (`make_temp_dir`: permissions from the umask, not mkdtemp's
0700, so that a server running as another user can read the export) and,
once every artifact is checked, renames it into place with `move_into_place`
(a previous export there is replaced only then). A write that fails (a
read-only or full disk) ends in `ExportWriteError`, one line naming the
directory and the cause.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

REPORT_FILE = "export_report.json"


class ExportWriteError(OSError):
    """The export could not be written; a previous export is unchanged."""


# OSErrors that mean the destination cannot take the export.
WRITE_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
)


def is_write_error(error: BaseException) -> bool:
    """False for an OSError that is not about the destination (a missing
    input file, say); True for the rest (TensorFlow's write errors)."""
    return not isinstance(error, OSError) or error.errno in WRITE_ERRNOS


def write_error(error: BaseException, export_dir: str, where: str) -> ExportWriteError:
    """`ExportWriteError` naming `export_dir`, the path written (`where`) and
    the cause (an `OSError`, or TensorFlow's error from its own file writes).
    """
    cause = getattr(error, "message", None) or str(error) or type(error).__name__
    cause = " ".join(cause.split())[:400]
    if not getattr(error, "filename", None) and where not in cause:
        cause += f" (writing {where!r})"
    return ExportWriteError(
        f"Cannot write the export {export_dir!r}: {type(error).__name__}: {cause}."
    )


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # Elsewhere: set and restore (not thread-safe).
    os.umask(mask)
    return mask


def make_temp_dir(export_dir: str) -> str:
    """A new hidden directory beside `export_dir`, with the umask's permissions.

    `tempfile.mkdtemp` creates it 0700; the finished export is this directory
    renamed, so it gets what `os.makedirs` would have given (0755 under umask
    022).

    Raises:
        ExportWriteError: the parent cannot be written.
    """
    parent = os.path.dirname(os.path.abspath(export_dir))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp_dir = tempfile.mkdtemp(
            prefix=f".{os.path.basename(export_dir)}.tmp-", dir=parent
        )
    except OSError as e:
        raise write_error(e, export_dir, parent) from e
    try:
        os.chmod(tmp_dir, 0o777 & ~_umask())
    except OSError as e:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise write_error(e, export_dir, tmp_dir) from e
    return tmp_dir


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
