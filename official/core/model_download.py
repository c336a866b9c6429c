"""Downloading one file into a cache: resumable, checked, locked, mirrored.

`download(url, dest, sha256=...)` fetches `url` into `dest` once:

* http(s) through `urllib`, resumable: bytes land in `dest + ".part"`, and a
  later attempt (or the automatic retry after a dropped connection) asks for
  the rest with an HTTP `Range` request; a server that ignores `Range`
  (status 200) restarts the file from the beginning;
* `file://` URLs, plain paths and any `tf.io.gfile` scheme (`gs://`, ...),
  read in chunks from where the `.part` file ends;
* a progress bar (tqdm) on a terminal, nothing when stderr is not one;
* the sha256 (and size, when known) checked before the file is used: a
  mismatch deletes the partial file and names both digests;
* an atomic rename into place, under an exclusive `fcntl.flock` on
  `dest + ".lock"`, so two processes (or threads) fetching the same file
  download it once: the second waits and finds it done;
* `GARDEN_OFFLINE=1`: nothing is downloaded; a missing file is an error that
  says so;
* `GARDEN_MIRROR`: URLs are rewritten for sites without internet access
  (`mirror_url`).

Example:
```python
import hashlib, os, tempfile
from official.core import model_download
src = os.path.join(tempfile.mkdtemp(), "w.bin")
with open(src, "wb") as f:
    f.write(b"weights")
digest = hashlib.sha256(b"weights").hexdigest()
dest = os.path.join(tempfile.mkdtemp(), "w.bin")
model_download.download("file://" + src, dest, sha256=digest, size=7)
assert open(dest, "rb").read() == b"weights"
```
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from absl import logging

OFFLINE_ENV = "GARDEN_OFFLINE"
MIRROR_ENV = "GARDEN_MIRROR"
CHUNK_BYTES = 1 << 20
# Attempts per download: a dropped connection resumes from the `.part` file.
ATTEMPTS = 3
TIMEOUT_S = 60.0


class ChecksumError(ValueError):
    """A downloaded file whose sha256 or size is not the one expected."""


class OfflineError(FileNotFoundError):
    """`GARDEN_OFFLINE=1` and the file is not in the cache."""


def offline() -> bool:
    """Whether `GARDEN_OFFLINE` is set to a true value (1, true, yes)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def _mirror_rules(value: str) -> tuple[list[tuple[str, str]], str]:
    """`GARDEN_MIRROR` as (prefix mappings, host-replacing prefix)."""
    mappings, prefix = [], ""
    for entry in value.replace("\n", ";").split(";"):
        entry = entry.strip()
        if not entry:
            continue
        if "=" in entry:
            source, target = entry.split("=", 1)
            if not source or not target:
                raise ValueError(
                    f"{MIRROR_ENV} entry {entry!r} must be FROM_PREFIX=TO_PREFIX "
                    "(both non-empty) or one mirror prefix such as "
                    "https://mirror.internal/garden."
                )
            mappings.append((source, target))
        elif prefix:
            raise ValueError(
                f"{MIRROR_ENV} holds two host-replacing prefixes ({prefix!r} and "
                f"{entry!r}); allowed: at most one, plus FROM=TO mappings."
            )
        else:
            prefix = entry
    return mappings, prefix


def mirror_url(url: str, mirror: str | None = None) -> str:
    """`url` as rewritten by `GARDEN_MIRROR` (or `mirror`), else unchanged.

    The value is a `;`-separated list of entries. `FROM=TO` replaces the URL
    prefix FROM by TO (the longest matching FROM wins); a bare prefix
    replaces the scheme and host of every other URL:
    `https://mirror.internal/garden` turns
    `https://storage.example.com/w/r.tar` into
    `https://mirror.internal/garden/w/r.tar`.

    Example:
    ```python
    from official.core.model_download import mirror_url
    assert mirror_url("https://a.org/w/x.tar", "http://m:8000/g") == (
        "http://m:8000/g/w/x.tar")
    assert mirror_url("gs://b/w/x.tar", "gs://b/=file:///srv/") == (
        "file:///srv/w/x.tar")
    ```
    """
    value = os.environ.get(MIRROR_ENV, "") if mirror is None else mirror
    if not value.strip():
        return url
    mappings, prefix = _mirror_rules(value)
    matching = [(s, t) for s, t in mappings if url.startswith(s)]
    if matching:
        source, target = max(matching, key=lambda m: len(m[0]))
        return target + url[len(source) :]
    if prefix:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme and parts.netloc:
            rest = urllib.parse.urlunsplit(("", "", *parts[2:]))
            return prefix.rstrip("/") + "/" + rest.lstrip("/")
    return url


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """An exclusive `fcntl.flock` on `path`, held inside the block.

    Each call opens the file anew, so threads of one process exclude each
    other as processes do.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _progress(total: int | None, initial: int, label: str):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=not sys.stderr.isatty(),
    )


def _http_chunks(url: str, offset: int) -> tuple[Iterator[bytes], int, int | None]:
    """(chunks, offset the chunks start at, total size or None)."""
    request = urllib.request.Request(url, headers={"User-Agent": "garden"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            # The `.part` file already holds everything: check it.
            return iter(()), offset, offset
        raise OSError(f"GET {url} failed: HTTP {e.code} {e.reason}.") from None
    start = offset if response.status == 206 else 0
    length = response.headers.get("Content-Length")
    total = start + int(length) if length is not None else None

    def chunks():
        with response:
            while True:
                chunk = response.read(CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk

    return chunks(), start, total


def _gfile_chunks(url: str, offset: int) -> tuple[Iterator[bytes], int, int | None]:
    import tensorflow as tf

    path = url
    if url.startswith("file://"):
        path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{url} does not exist.")
    total = tf.io.gfile.stat(path).length
    start = min(offset, total)

    def chunks():
        with tf.io.gfile.GFile(path, "rb") as f:
            f.seek(start)
            while True:
                chunk = f.read(CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk

    return chunks(), start, total


def _fetch_once(url: str, part: str, size: int | None, label: str) -> None:
    """Appends the rest of `url` to `part` (starting over if the source must)."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    scheme = urllib.parse.urlsplit(url).scheme
    opener = _http_chunks if scheme in ("http", "https") else _gfile_chunks
    chunks, start, total = opener(url, offset)
    if start != offset:
        logging.info("%s: the source cannot resume; starting over.", url)
    elif offset:
        logging.info("%s: resuming at byte %d.", url, offset)
    with open(part, "r+b" if os.path.exists(part) else "wb") as f:
        f.seek(start)
        f.truncate()
        with _progress(total or size, start, label) as bar:
            for chunk in chunks:
                f.write(chunk)
                bar.update(len(chunk))
        # urllib returns a short body quietly when the connection drops.
        if total is not None and f.tell() < total:
            raise ConnectionError(f"connection closed at byte {f.tell()} of {total}")


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check(part: str, url: str, sha256: str | None, size: int | None) -> str:
    """Returns the digest of `part`; deletes it and raises on a mismatch."""
    got_size = os.path.getsize(part)
    got = file_sha256(part)
    if sha256 and got != sha256.lower():
        os.remove(part)
        raise ChecksumError(
            f"Checksum mismatch for {url}: expected sha256 {sha256.lower()}, got "
            f"{got} ({got_size} bytes). The partial file was deleted; the source "
            "or the manifest entry is wrong, or the transfer was corrupted."
        )
    if size is not None and got_size != size:
        os.remove(part)
        raise ChecksumError(
            f"Size mismatch for {url}: expected {size} bytes, got {got_size} "
            f"(sha256 {got}). The partial file was deleted."
        )
    return got


_RETRYABLE = (
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    ConnectionError,
    TimeoutError,
    urllib.error.URLError,
)


def download(
    url: str,
    dest: str,
    sha256: str | None = None,
    size: int | None = None,
    attempts: int = ATTEMPTS,
    label: str = "",
) -> str:
    """Downloads `url` to `dest` unless it is there; returns its sha256.

    Args:
        url: http(s), `file://`, a path or any `tf.io.gfile` URL; rewritten
            by `GARDEN_MIRROR` first.
        dest: the final path; `dest.part` holds bytes in transit and
            `dest.lock` the lock.
        sha256: the expected hex digest, checked before `dest` appears; None
            skips the check (the digest is logged).
        size: the expected size in bytes, or None.
        attempts: tries; each after the first resumes where the last stopped.
        label: the progress bar's description.

    Raises:
        OfflineError: `GARDEN_OFFLINE=1` and `dest` is missing.
        ChecksumError: the file's digest or size differs (both named).
        OSError: the source cannot be read after `attempts` tries.
    """
    if os.path.exists(dest):
        return sha256 or file_sha256(dest)
    if offline():
        raise OfflineError(
            f"{OFFLINE_ENV}=1 and {dest} is not in the cache; nothing is "
            f"downloaded offline. Fetch it once with network access (from "
            f"{url}), copy the cache directory here, or unset {OFFLINE_ENV}."
        )
    source = mirror_url(url)
    if source != url:
        logging.info("%s -> %s (%s).", url, source, MIRROR_ENV)
    with file_lock(dest + ".lock"):
        if os.path.exists(dest):  # Another process finished it meanwhile.
            return sha256 or file_sha256(dest)
        part = dest + ".part"
        for attempt in range(1, attempts + 1):
            try:
                _fetch_once(source, part, size, label or os.path.basename(dest))
                break
            except _RETRYABLE as e:
                if attempt == attempts:
                    raise OSError(
                        f"Download of {source} failed after {attempts} attempt(s): "
                        f"{e!r}. The bytes so far are kept in {part}; run again "
                        "to resume."
                    ) from None
                logging.warning(
                    "%s: %r; resuming (attempt %d).", source, e, attempt + 1
                )
        digest = _check(part, source, sha256, size)
        if not sha256:
            logging.warning(
                "%s was not verified (no sha256 given): sha256 %s.", url, digest
            )
        os.replace(part, dest)
    return digest
