"""Loading, serving and replacing model versions while the server runs.

Each model's `base_path` holds numbered version directories, each a
SavedModel (`base_path/1/saved_model.pb`, `base_path/2/...`), as TF Serving
expects. `ModelManager.poll()` looks at every base path, loads the versions
the model's version policy wants (by default the highest one), and unloads
the versions it no longer wants once their replacements are available; a
background thread polls every `poll_wait_seconds`, so a new version directory
is served without a restart. Requests without a version go to the highest
loaded version.

A version directory counts once it contains `saved_model.pb`. Copy a new
version elsewhere and `mv` it into `base_path` so that it appears whole. A
version that fails to load is reported by `statuses()` (state END with the
error) and is not retried until its files change; the versions already
loaded keep serving meanwhile.

Imports only TensorFlow and the standard library, and tensorflow-text when it
is installed (`register_text_ops`): SavedModels that tokenize text inside
(Garden's text exports) need its ops, which the stock TF Serving binary does
not have.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import tensorflow as tf
from absl import logging

from serving.model_config import ModelConfig
from serving.serving_error import ServingError, choices, not_found
from serving.signature import Signature

LABEL_FILES = ("labels.txt", os.path.join("assets.extra", "labels.txt"))


@dataclasses.dataclass
class VersionStatus:
    """One version's state, as TF Serving's `ModelVersionStatus`."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""


def register_text_ops() -> bool:
    """Imports tensorflow-text when installed, which registers its ops
    (WordPiece tokenization, ...) so that SavedModels using them load.
    Returns whether it is available."""
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        return False
    return True


class LoadedVersion:
    """One loaded SavedModel version: its signatures, SignatureDefs and labels.

    Args:
        name: the model name.
        version: the version number (its directory name).
        path: the SavedModel directory.
    """

    def __init__(self, name: str, version: int, path: str):
        self.name = name
        self.version = version
        self.path = path
        # As TF Serving does: the "serve" MetaGraph in a graph and session of
        # its own (variables restored, tables initialized by the loader), run
        # through one Session callable per signature. A request then costs
        # one C++ call; a TF2 concrete function call costs about 0.3 ms more
        # in Python per request on a small model.
        register_text_ops()
        graph = tf.Graph()
        threads = tf.config.threading
        self.session = tf.compat.v1.Session(
            graph=graph,
            config=tf.compat.v1.ConfigProto(
                intra_op_parallelism_threads=threads.get_intra_op_parallelism_threads(),
                inter_op_parallelism_threads=threads.get_inter_op_parallelism_threads(),
            ),
        )
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(
                self.session, ["serve"], path
            )
        graph.finalize()
        self.signature_defs = dict(meta_graph.signature_def)
        self.signatures = {
            key: Signature.from_session(key, signature_def, self.session)
            for key, signature_def in self.signature_defs.items()
            # "__saved_model_init_op" and the like are not callable signatures.
            if not key.startswith("__") and signature_def.inputs
        }
        self.labels = _read_labels(path)

    def signature(self, signature_name: str) -> Signature:
        """The signature called `signature_name`; "" means serving_default."""
        key = signature_name or "serving_default"
        if key not in self.signatures:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Model {self.name!r} version {self.version}: "
                + choices("signature_name", key, self.signatures),
            )
        return self.signatures[key]


def _read_labels(path: str) -> list[str] | None:
    for name in LABEL_FILES:
        label_path = os.path.join(path, name)
        if os.path.isfile(label_path):
            with open(label_path, encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.strip()]
    return None


def _files_fingerprint(path: str) -> tuple[int, float]:
    count, newest = 0, 0.0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
            except OSError:
                continue
            count += 1
    return count, newest


class _Model:
    def __init__(self, config: ModelConfig):
        self.config = config
        self.versions: dict[int, LoadedVersion] = {}
        self.statuses: dict[int, VersionStatus] = {}
        self.failed: dict[int, tuple[int, float]] = {}  # version -> fingerprint
        self.warned_empty = False


class ModelManager:
    """Keeps the wanted versions of each configured model loaded.

    Args:
        configs: the models to serve.
        poll_wait_seconds: seconds between polls of the base paths. As in TF
            Serving, 0 polls once at start and a negative value never polls
            (nothing is loaded).
    """

    def __init__(self, configs: list[ModelConfig], poll_wait_seconds: float = 1.0):
        if not configs:
            raise ValueError("No models to serve: give --model_base_path or a config.")
        self._models = {config.name: _Model(config) for config in configs}
        self._poll_wait_seconds = poll_wait_seconds
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Checks the base paths, loads once, then polls in a background thread."""
        for model in self._models.values():
            base_path = model.config.base_path
            if not os.path.isdir(base_path):
                raise FileNotFoundError(
                    f"Model {model.config.name!r}: base path {base_path!r} is not a "
                    f"directory."
                )
            if os.path.exists(os.path.join(base_path, "saved_model.pb")):
                raise ValueError(
                    f"Model {model.config.name!r}: {base_path!r} is a SavedModel "
                    f"itself; the base path must hold numbered version directories "
                    f"(move it to {os.path.join(base_path, '1')!r})."
                )
        if self._poll_wait_seconds < 0:
            return
        self.poll()
        if self._poll_wait_seconds > 0:
            self._thread = threading.Thread(
                target=self._poll_loop, name="model-poller", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _poll_loop(self) -> None:
        while not self._stopped.wait(self._poll_wait_seconds):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - keep polling; the error is logged.
                logging.exception("Polling the model base paths failed.")

    # ---- polling -------------------------------------------------------------------

    def poll(self) -> None:
        """One pass: load wanted versions, then unload unwanted ones."""
        with self._poll_lock:
            for model in self._models.values():
                self._poll_model(model)

    def _on_disk(self, model: _Model) -> dict[int, str] | None:
        base_path = model.config.base_path
        try:
            names = os.listdir(base_path)
        except OSError as e:
            logging.warning(
                "Model %r: cannot list %s (keeping what is loaded): %s",
                model.config.name,
                base_path,
                e,
            )
            return None
        found = {}
        for name in names:
            path = os.path.join(base_path, name)
            if name.isdigit() and os.path.isfile(os.path.join(path, "saved_model.pb")):
                found[int(name)] = path
        return found

    def _poll_model(self, model: _Model) -> None:
        name = model.config.name
        on_disk = self._on_disk(model)
        if on_disk is None:
            return
        for version, fingerprint in list(model.failed.items()):
            path = on_disk.get(version)
            if path is None or _files_fingerprint(path) != fingerprint:
                del model.failed[version]  # changed or gone: may be retried.
        while True:  # Ends: each load either succeeds or marks its version failed.
            wanted = model.config.wanted([v for v in on_disk if v not in model.failed])
            missing = [v for v in wanted if v not in model.versions]
            if not missing:
                break
            for version in sorted(missing, reverse=True):
                self._load(model, version, on_disk[version])
        if not wanted and not model.warned_empty:
            logging.warning(
                "Model %r: no loadable version under %s (waiting for a numbered "
                "directory with saved_model.pb).",
                name,
                model.config.base_path,
            )
            model.warned_empty = True
        for version in list(model.versions):
            if version not in wanted:
                self._unload(model, version)

    def _load(self, model: _Model, version: int, path: str) -> None:
        name = model.config.name
        with self._lock:
            model.statuses[version] = VersionStatus(version, "LOADING")
        started = time.monotonic()
        try:
            loaded = LoadedVersion(name, version, path)
        except Exception as e:  # noqa: BLE001 - any load failure is reported.
            message = f"{type(e).__name__}: {e}"
            logging.error(
                "Model %r version %d failed to load: %s", name, version, message
            )
            with self._lock:
                model.statuses[version] = VersionStatus(
                    version, "END", "UNKNOWN", message
                )
                model.failed[version] = _files_fingerprint(path)
            return
        with self._lock:
            model.versions[version] = loaded
            model.statuses[version] = VersionStatus(version, "AVAILABLE")
            model.warned_empty = False
        logging.info(
            "Model %r version %d is available (%.1f s; signatures: %s).",
            name,
            version,
            time.monotonic() - started,
            ", ".join(sorted(loaded.signatures)),
        )

    def _unload(self, model: _Model, version: int) -> None:
        with self._lock:
            model.statuses[version] = VersionStatus(version, "UNLOADING")
            # In-flight requests hold their own reference; it is freed after them.
            del model.versions[version]
            model.statuses[version] = VersionStatus(version, "END")
        logging.info("Model %r version %d is unloaded.", model.config.name, version)

    # ---- lookups -------------------------------------------------------------------

    def model_names(self) -> list[str]:
        return list(self._models)

    def _model(self, name: str) -> _Model:
        if name not in self._models:
            raise not_found(choices("model", name, self._models))
        return self._models[name]

    def resolve_label(self, name: str, label: str) -> int:
        """The version a `version_labels` label points at."""
        labels = dict(self._model(name).config.version_labels)
        if label not in labels:
            raise not_found(
                f"Model {name!r}: " + choices("version label", label, labels)
            )
        return labels[label]

    def get(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> LoadedVersion:
        """The loaded version asked for; the highest one when none is given."""
        model = self._model(name)
        if label is not None:
            version = self.resolve_label(name, label)
        with self._lock:
            versions = dict(model.versions)
        if not versions:
            raise not_found(
                f"Model {name!r} has no loaded version (base path "
                f"{model.config.base_path!r})."
            )
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            loaded = ", ".join(str(v) for v in sorted(versions))
            raise not_found(
                f"Version {version} of model {name!r} is not loaded. "
                f"Loaded versions: {loaded}."
            )
        return versions[version]

    def statuses(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]:
        """Every known version's status, or the one asked for."""
        model = self._model(name)
        if label is not None:
            version = self.resolve_label(name, label)
        with self._lock:
            statuses = {v: dataclasses.replace(s) for v, s in model.statuses.items()}
        if version is None:
            if not statuses:
                raise not_found(f"Model {name!r} has no version yet.")
            return [statuses[v] for v in sorted(statuses, reverse=True)]
        if version not in statuses:
            known = ", ".join(str(v) for v in sorted(statuses)) or "(none)"
            raise not_found(
                f"Version {version} of model {name!r} is unknown. Known versions: "
                f"{known}."
            )
        return [statuses[version]]
