"""The weights archive: one tar holding a weights-only checkpoint and its metadata.

`write_archive` packs a TF checkpoint (`weights.index`, `weights.data-*`) and
`weights.json` into a reproducible tar, so one sha256 covers the weights;
`extract_archive` unpacks one atomically, refusing any other member.

Example:
```python
import os, tempfile
import tensorflow as tf
from official.core import weights_archive
tmp = tempfile.mkdtemp()
prefix = tf.train.Checkpoint(v=tf.Variable(1.0)).write(os.path.join(tmp, "c", "w"))
digest, size = weights_archive.write_archive(prefix, tmp + "/w.tar", {"name": "x"})
restored = weights_archive.extract_archive(tmp + "/w.tar", tmp + "/out")
assert tf.train.load_checkpoint(restored).get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE") == 1.0
```
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile

from official.core import model_download

# Inside an archive: the checkpoint prefix and the metadata file.
CHECKPOINT_NAME = "weights"
METADATA_NAME = "weights.json"
_MEMBER = re.compile(r"weights(\.index|\.data-\d{5}-of-\d{5}|\.json)")


def write_archive(prefix: str, archive: str, metadata: dict) -> tuple[str, int]:
    """Packs checkpoint `prefix` and `metadata` into tar `archive`.

    The tar is reproducible (sorted members, zero times and owners) and is
    written to a temporary sibling, then renamed. Returns (sha256, size).
    """
    directory, base = os.path.split(prefix)
    files = sorted(
        f for f in os.listdir(directory or ".")
        if f == base + ".index" or f.startswith(base + ".data-")
    )  # fmt: skip
    tmp = archive + ".tmp"

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                add(tar, CHECKPOINT_NAME + name[len(base) :], f.read())
        text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
        add(tar, METADATA_NAME, text.encode())
    os.replace(tmp, archive)
    return model_download.file_sha256(archive), os.path.getsize(archive)


def _check_members(archive: str, members: list[tarfile.TarInfo]) -> None:
    names = [m.name for m in members]
    bad = [m.name for m in members if not (m.isfile() and _MEMBER.fullmatch(m.name))]
    if bad or not any(n.endswith(".index") for n in names):
        raise ValueError(
            f"{archive} is not a Garden weights archive: it holds {names}; allowed: "
            f"{CHECKPOINT_NAME}.index, {CHECKPOINT_NAME}.data-NNNNN-of-NNNNN and "
            f"{METADATA_NAME}, as written by tools/publish_weights.py."
        )


def extract_archive(archive: str, dest: str) -> str:
    """Extracts `archive` into `dest` atomically; returns the checkpoint prefix."""
    prefix = os.path.join(dest, CHECKPOINT_NAME)
    if os.path.isdir(dest):
        return prefix
    tmp = f"{dest}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:") as tar:
            members = tar.getmembers()
            _check_members(archive, members)
            for member in members:
                os.makedirs(tmp, exist_ok=True)
                with tar.extractfile(member) as src:
                    with open(os.path.join(tmp, member.name), "wb") as out:
                        shutil.copyfileobj(src, out)
        os.replace(tmp, dest)
    except tarfile.TarError as e:
        raise ValueError(f"{archive} is not a readable tar archive: {e}.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return prefix
