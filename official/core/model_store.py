"""Named pretrained weights: manifests, a cache, and `store:NAME` checkpoints.

A manifest is a JSON file listing weights by name:

```json
{"format": "garden-manifest/1",
 "weights": [{"name": "resnet_digits.demo",
              "url": "https://weights.example.com/garden/resnet_digits.demo.tar",
              "sha256": "<64 hex digits>", "size": 123456,
              "experiment": "resnet_digits",
              "config": {"task": {"model": {"num_classes": 10}}},
              "license": "CC-BY-4.0, trained on the embedded digits data",
              "description": "optional"}]}
```

`config` is the part of the experiment's config the weights fit (written by
`tools/publish_weights.py`: the run's `task.model`); a relative `url` is
relative to the manifest's directory. Manifests are read in order: the
built-in one shipped in the package (`model_manifest.json`), then each path
in `GARDEN_MANIFESTS` (separated by `os.pathsep`), then the run's
`trainer.init_checkpoint_manifests`. A name listed twice is an error naming
both files.

The archive behind a URL is a tar of one weights-only TF checkpoint
(`weights.index`, `weights.data-*`) and `weights.json` (its metadata;
`official/core/weights_archive.py`); it is downloaded once into `GARDEN_HOME` (default `~/.cache/garden`, or
`$XDG_CACHE_HOME/garden`), checked against its sha256 and extracted
atomically (`official/core/model_download.py`: resume, lock, offline,
mirror).

`trainer.init_checkpoint` accepts `store:NAME`, or the URL of such an
archive (http(s), `file://`, or any path ending in `.tar`); a `#sha256=HEX`
fragment on a URL is checked.

Example:
```python
import json, os, tempfile
from official.core import model_store
path = os.path.join(tempfile.mkdtemp(), "manifest.json")
with open(path, "w") as f:
    json.dump({"weights": [{"name": "toy.v1", "url": "toy.v1.tar",
        "sha256": "0" * 64, "size": 10, "experiment": "resnet_digits",
        "config": {}, "license": "MIT"}]}, f)
(entry,) = model_store.load_manifest(path)
assert entry.url == os.path.join(os.path.dirname(path), "toy.v1.tar")
```
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

from absl import logging

from official.base.suggest import did_you_mean
from official.core import model_download, weights_archive

MANIFESTS_ENV = "GARDEN_MANIFESTS"
HOME_ENV = "GARDEN_HOME"
STORE_PREFIX = "store:"
MANIFEST_FORMAT = "garden-manifest/1"
BUILTIN_MANIFEST = os.path.join(os.path.dirname(__file__), "model_manifest.json")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    """One named set of weights.

    Attributes:
        name: `arch.tag`, e.g. `resnet_digits.demo`.
        url: where the archive is (http(s), file://, a path, gs://...).
        sha256: hex digest of the archive.
        size: the archive's size in bytes.
        experiment: the registered experiment the weights were trained with.
        config: config keys (nested mapping) the model must have to fit.
        license: the licence and provenance note.
        description: free text.
        source: the manifest file the entry came from.
    """

    name: str
    url: str
    sha256: str
    size: int
    experiment: str
    config: dict
    license: str
    description: str = ""
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        if not out["description"]:
            out.pop("description")
        return out


_REQUIRED = ("name", "url", "sha256", "size", "experiment", "config", "license")
_FIELDS = (*_REQUIRED, "description")


def entry_from_dict(data: Any, where: str, base_dir: str = "") -> ManifestEntry:
    """Validates one manifest entry; `where` names it in errors."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object. Received: {data!r}.")
    if isinstance(data.get("name"), str):
        where = f"{where} ({data['name']!r})"
    for key in data:
        if key not in _FIELDS:
            raise ValueError(
                f"{where}: unknown key {key!r}.{did_you_mean(key, _FIELDS)} "
                f"Allowed: {', '.join(_FIELDS)}."
            )
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ValueError(
            f"{where}: missing {', '.join(missing)}. Required: {', '.join(_REQUIRED)}."
        )
    checks = [
        ("name", isinstance(data["name"], str) and _NAME.fullmatch(data["name"]),
         "letters, digits, '_', '.', '-' (e.g. resnet50.imagenet)"),
        ("url", isinstance(data["url"], str) and data["url"].strip(),
         "a non-empty string"),
        ("sha256", isinstance(data["sha256"], str) and _SHA256.fullmatch(data["sha256"]),
         "64 lowercase hex digits"),
        ("size", type(data["size"]) is int and data["size"] > 0,
         "the archive's size in bytes, an integer > 0"),
        ("experiment", isinstance(data["experiment"], str) and data["experiment"],
         "a registered experiment name"),
        ("config", isinstance(data["config"], dict), "a mapping of config keys"),
        ("license", isinstance(data["license"], str) and data["license"].strip(),
         "a non-empty licence note"),
        ("description", isinstance(data.get("description", ""), str), "a string"),
    ]  # fmt: skip
    for key, ok, allowed in checks:
        if not ok:
            raise ValueError(
                f"{where}: {key} must be {allowed}. Received: {data[key]!r}."
            )
    url = data["url"]
    if base_dir and not urllib.parse.urlsplit(url).scheme and not os.path.isabs(url):
        url = os.path.join(base_dir, url)
    return ManifestEntry(
        **{**data, "url": url, "description": data.get("description", "")}
    )


def load_manifest(path: str) -> list[ManifestEntry]:
    """The entries of one manifest file, each validated.

    Raises:
        FileNotFoundError: naming `path`.
        ValueError: naming the file, the entry and what is wrong with it.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights manifest {path!r} does not exist.")
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"Weights manifest {path} is not JSON: {e}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("weights"), list):
        raise ValueError(
            f"Weights manifest {path} must be a JSON object with a 'weights' list "
            f'(e.g. {{"format": "{MANIFEST_FORMAT}", "weights": []}}).'
        )
    if data.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        raise ValueError(
            f"Weights manifest {path}: format {data['format']!r} is not supported; "
            f"allowed: {MANIFEST_FORMAT!r}."
        )
    base_dir = os.path.dirname(os.path.abspath(path))
    entries, seen = [], {}
    for i, item in enumerate(data["weights"]):
        entry = entry_from_dict(item, f"{path}: weights[{i}]", base_dir)
        entry = dataclasses.replace(entry, source=path)
        if entry.name in seen:
            raise ValueError(
                f"{path}: weights[{i}] repeats the name {entry.name!r} of "
                f"weights[{seen[entry.name]}]; names must be unique."
            )
        seen[entry.name] = i
        entries.append(entry)
    return entries


def manifest_paths(extra: Sequence[str] = ()) -> list[str]:
    """Built-in manifest, `GARDEN_MANIFESTS`, then `extra`; each file once."""
    paths = [BUILTIN_MANIFEST]
    paths += [p for p in os.environ.get(MANIFESTS_ENV, "").split(os.pathsep) if p]
    paths += [p for p in extra if p]
    unique, seen = [], set()
    for path in paths:
        key = os.path.abspath(os.path.expanduser(path))
        if key not in seen:
            seen.add(key)
            unique.append(os.path.expanduser(path))
    return unique


def load_entries(extra: Sequence[str] = ()) -> dict[str, ManifestEntry]:
    """Every entry of every manifest, by name; a name in two files is an error."""
    entries: dict[str, ManifestEntry] = {}
    for path in manifest_paths(extra):
        for entry in load_manifest(path):
            if entry.name in entries:
                raise ValueError(
                    f"Weights {entry.name!r} are listed in two manifests: "
                    f"{entries[entry.name].source} and {path}. Rename one."
                )
            entries[entry.name] = entry
    return entries


def get_entry(name: str, extra: Sequence[str] = ()) -> ManifestEntry:
    """The entry called `name`; KeyError lists the known names."""
    entries = load_entries(extra)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise KeyError(
            f"Unknown weights {name!r}.{did_you_mean(name, entries)} Known: {known} "
            f"(from {', '.join(manifest_paths(extra))}). Add a manifest with "
            f"{MANIFESTS_ENV}=PATH or trainer.init_checkpoint_manifests=[PATH]."
        )
    return entries[name]


def garden_home() -> str:
    """The cache directory: `GARDEN_HOME`, else `$XDG_CACHE_HOME/garden`."""
    home = os.environ.get(HOME_ENV)
    if home:
        return os.path.expanduser(home)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(cache, "garden")


def _fetch(url: str, sha256: str | None, size: int | None, key: str) -> str:
    """Downloads and extracts one archive under `key`; returns the prefix."""
    home = garden_home()
    dest = os.path.join(home, "weights", key)
    prefix = os.path.join(dest, weights_archive.CHECKPOINT_NAME)
    if os.path.isdir(dest):
        return prefix
    archive = os.path.join(home, "archives", key + ".tar")
    os.makedirs(os.path.dirname(archive), exist_ok=True)
    model_download.download(url, archive, sha256=sha256, size=size, label=key)
    with model_download.file_lock(dest + ".lock"):
        return weights_archive.extract_archive(archive, dest)


def fetch_weights(name: str, manifests: Sequence[str] = ()) -> str:
    """The local checkpoint prefix of the weights `name`, fetched if needed."""
    entry = get_entry(name, manifests)
    key = f"{entry.name}-{entry.sha256[:12]}"
    prefix = _fetch(entry.url, entry.sha256, entry.size, key)
    logging.info(
        "Weights %s (%s; licence: %s) are at %s.",
        name,
        entry.url,
        entry.license,
        prefix,
    )
    return prefix


def is_remote(spec: str) -> bool:
    """Whether `trainer.init_checkpoint=spec` goes through the store."""
    scheme = urllib.parse.urlsplit(spec).scheme
    path = spec.split("#", 1)[0]
    return (
        spec.startswith(STORE_PREFIX)
        or scheme in ("http", "https", "file")
        or path.endswith(".tar")
    )


def resolve_checkpoint_spec(spec: str, manifests: Sequence[str] = ()) -> str:
    """A local checkpoint for `spec`: `store:NAME`, an archive URL, or as given.

    Anything else (a directory or prefix, on any `tf.io.gfile` file system)
    is returned unchanged.
    """
    if not is_remote(spec):
        return spec
    if spec.startswith(STORE_PREFIX):
        return fetch_weights(spec[len(STORE_PREFIX) :], manifests)
    url, _, fragment = spec.partition("#")
    sha256 = None
    if fragment:
        if not fragment.startswith("sha256="):
            raise ValueError(
                f"Checkpoint URL {spec!r}: the fragment must be #sha256=HEX; "
                f"received #{fragment}."
            )
        sha256 = fragment[len("sha256=") :].lower()
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"{spec!r}: sha256 must be 64 hex digits.")
    stem = os.path.basename(urllib.parse.urlsplit(url).path) or "weights"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem.removesuffix(".tar"))
    tag = sha256 or hashlib.sha256(url.encode()).hexdigest()
    return _fetch(url, sha256, None, f"{stem}-{tag[:12]}")


def add_to_manifest(path: str, entry: ManifestEntry, replace: bool = False) -> None:
    """Adds `entry` to manifest `path` (created if missing), atomically."""
    data = {"format": MANIFEST_FORMAT, "weights": []}
    if os.path.exists(path):
        load_manifest(path)  # Refuses a broken file before changing it.
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    weights = [w for w in data["weights"] if w.get("name") != entry.name]
    if len(weights) != len(data["weights"]) and not replace:
        raise ValueError(
            f"Manifest {path} already lists weights {entry.name!r}; pick another "
            "name or pass --replace to overwrite its entry."
        )
    data["weights"] = [*weights, entry.as_dict()]
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
