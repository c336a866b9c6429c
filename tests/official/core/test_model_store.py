"""The model store: manifests, downloads (resume, checksum, lock, offline, mirror)."""

import hashlib
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from official.core import model_download, model_store, weights_archive
from official.testing.file_server import FileServer

NAME = "toy.v1"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh GARDEN_HOME, no user manifests, online, no mirror."""
    path = tmp_path / "home"
    monkeypatch.setenv(model_store.HOME_ENV, str(path))
    for env in (model_store.MANIFESTS_ENV, "GARDEN_OFFLINE", "GARDEN_MIRROR"):
        monkeypatch.delenv(env, raising=False)
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """(bytes, sha256) of a weights archive holding v = [1, 2, 3]."""
    tmp = tmp_path_factory.mktemp("archive")
    prefix = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0, 3.0])).write(
        str(tmp / "ckpt" / "weights")
    )
    sha256, _ = weights_archive.write_archive(
        prefix, str(tmp / "a.tar"), {"name": NAME}
    )
    data = (tmp / "a.tar").read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha256
    return data, sha256


def _entry(**extra):
    entry = {
        "name": NAME,
        "url": "https://weights.example.com/toy.v1.tar",
        "sha256": "a" * 64,
        "size": 10,
        "experiment": "resnet_digits",
        "config": {"task": {"model": {"num_classes": 10}}},
        "license": "MIT",
    }
    entry.update(extra)
    return entry


def _manifest(path, *entries):
    path.write_text(json.dumps({"format": "garden-manifest/1", "weights": entries}))
    return str(path)


def _value(prefix):
    return tf.train.load_checkpoint(prefix).get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE")


def test_builtin_manifest_is_valid():
    # Shipped with the package; lists only weights that really exist.
    assert os.path.isfile(model_store.BUILTIN_MANIFEST)
    for entry in model_store.load_manifest(model_store.BUILTIN_MANIFEST):
        assert entry.url.startswith("https://")


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"sha256": "abc"},
            r"m.json: weights\[1\] \('toy.v1'\): sha256 must be 64 .*'abc'",
        ),
        ({"size": "10"}, r"size must be the archive's size in bytes"),
        ({"name": "bad name"}, r"name must be letters"),
        ({"license": ""}, r"license must be a non-empty licence note"),
        ({"config": []}, r"config must be a mapping"),
        ({"sha": "a"}, r"unknown key 'sha'\. Did you mean 'sha256'\? Allowed: name"),
    ],
)
def test_manifest_validation_names_the_bad_entry(tmp_path, change, message):
    path = _manifest(tmp_path / "m.json", _entry(name="ok.v0"), _entry(**change))
    with pytest.raises(ValueError, match=message):
        model_store.load_manifest(path)


def test_manifest_errors(tmp_path, home, monkeypatch):
    missing = _entry()
    del missing["sha256"]
    with pytest.raises(ValueError, match="missing sha256. Required: name, url"):
        model_store.load_manifest(_manifest(tmp_path / "a.json", missing))
    with pytest.raises(ValueError, match=r"repeats the name 'toy.v1' of weights\[0\]"):
        model_store.load_manifest(_manifest(tmp_path / "b.json", _entry(), _entry()))
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ValueError, match="c.json is not JSON"):
        model_store.load_manifest(str(tmp_path / "c.json"))
    (tmp_path / "d.json").write_text('{"format": "v9", "weights": []}')
    with pytest.raises(ValueError, match="format 'v9' is not supported"):
        model_store.load_manifest(str(tmp_path / "d.json"))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        model_store.load_manifest(str(tmp_path / "nope.json"))

    # Two manifests listing one name: both files named.
    first = _manifest(tmp_path / "e.json", _entry())
    second = _manifest(tmp_path / "f.json", _entry())
    monkeypatch.setenv(model_store.MANIFESTS_ENV, first)
    with pytest.raises(ValueError, match="e.json and .*f.json"):
        model_store.get_entry(NAME, [second])
    # An unknown name lists the known ones and the closest.
    with pytest.raises(KeyError, match="Did you mean 'toy.v1'.*Known: toy.v1"):
        model_store.get_entry("toy.v2")
    assert model_store.get_entry(NAME, [first]).source == first


def test_http_download_then_cache(tmp_path, home, archive):
    data, sha256 = archive
    with FileServer({"w/toy.tar": data}) as server:
        manifest = _manifest(
            tmp_path / "m.json",
            _entry(url=server.url("w/toy.tar"), sha256=sha256, size=len(data)),
        )
        prefix = model_store.resolve_checkpoint_spec(f"store:{NAME}", [manifest])
        again = model_store.resolve_checkpoint_spec(f"store:{NAME}", [manifest])
        assert server.requests == [("w/toy.tar", None)]  # Once, then the cache.
    assert prefix == again and prefix.startswith(str(home))
    np.testing.assert_array_equal(_value(prefix), [1.0, 2.0, 3.0])
    assert sorted(os.listdir(os.path.dirname(prefix))) == [
        "weights.data-00000-of-00001",
        "weights.index",
        "weights.json",
    ]
    # Paths and gs:// checkpoints pass through unchanged.
    assert model_store.resolve_checkpoint_spec("runs/x") == "runs/x"
    assert model_store.resolve_checkpoint_spec("gs://b/run") == "gs://b/run"


def test_interrupted_download_resumes(tmp_path, archive):
    data, sha256 = archive
    dest = str(tmp_path / "a.tar")
    with FileServer({"a.tar": data}, drop_once={"a.tar"}) as server:
        with pytest.raises(OSError, match="run again to resume"):
            model_download.download(server.url("a.tar"), dest, sha256, attempts=1)
        assert os.path.getsize(dest + ".part") == len(data) // 2
        model_download.download(server.url("a.tar"), dest, sha256, len(data))
        assert server.requests == [
            ("a.tar", None),
            ("a.tar", f"bytes={len(data) // 2}-"),
        ]
    assert open(dest, "rb").read() == data and not os.path.exists(dest + ".part")

    # Within one call, the retry after a dropped connection resumes.
    dest = str(tmp_path / "b.tar")
    with FileServer({"a.tar": data}, drop_once={"a.tar"}) as server:
        model_download.download(server.url("a.tar"), dest, sha256, len(data))
        assert [r for _, r in server.requests] == [None, f"bytes={len(data) // 2}-"]
    assert open(dest, "rb").read() == data


def test_server_without_range_restarts(tmp_path, archive):
    data, sha256 = archive
    dest = str(tmp_path / "a.tar")
    with open(dest + ".part", "wb") as f:
        f.write(b"junk that is not the start of the file")
    with FileServer({"a.tar": data}, range_support=False) as server:
        model_download.download(server.url("a.tar"), dest, sha256, len(data))
    assert open(dest, "rb").read() == data


def test_corrupt_download_is_refused(tmp_path, home, archive):
    data, sha256 = archive
    bad = data[:-1] + bytes([data[-1] ^ 1])
    got = hashlib.sha256(bad).hexdigest()
    with FileServer({"a.tar": bad}) as server:
        manifest = _manifest(
            tmp_path / "m.json",
            _entry(url=server.url("a.tar"), sha256=sha256, size=len(data)),
        )
        with pytest.raises(model_download.ChecksumError) as error:
            model_store.fetch_weights(NAME, [manifest])
    assert f"expected sha256 {sha256}, got {got}" in str(error.value)
    archives = home / "archives"
    assert [f for f in os.listdir(archives) if not f.endswith(".lock")] == []
    assert not (home / "weights").exists() or not any(
        p.is_dir() for p in (home / "weights").iterdir()
    )


def test_offline_uses_the_cache_only(tmp_path, home, archive, monkeypatch):
    data, sha256 = archive
    with FileServer({"a.tar": data}) as server:
        manifest = _manifest(
            tmp_path / "m.json",
            _entry(url=server.url("a.tar"), sha256=sha256, size=len(data)),
        )
        monkeypatch.setenv("GARDEN_OFFLINE", "1")
        with pytest.raises(model_download.OfflineError, match="GARDEN_OFFLINE=1 and"):
            model_store.fetch_weights(NAME, [manifest])
        assert server.requests == []
        monkeypatch.delenv("GARDEN_OFFLINE")
        online = model_store.fetch_weights(NAME, [manifest])
        monkeypatch.setenv("GARDEN_OFFLINE", "1")
        assert model_store.fetch_weights(NAME, [manifest]) == online
        assert len(server.requests) == 1


def test_two_fetches_at_once_download_once(tmp_path, home, archive, monkeypatch):
    data, sha256 = archive
    waiting = threading.Event()
    real_flock = model_download.fcntl.flock
    calls = []

    def flock(fd, operation):
        if operation == model_download.fcntl.LOCK_EX:
            calls.append(fd)
            if len(calls) == 2:  # The second fetcher is about to wait.
                waiting.set()
        return real_flock(fd, operation)

    monkeypatch.setattr(model_download.fcntl, "flock", flock)
    results = []
    with FileServer({"a.tar": data}, hold_first=True) as server:
        manifest = _manifest(
            tmp_path / "m.json",
            _entry(url=server.url("a.tar"), sha256=sha256, size=len(data)),
        )

        def fetch():
            results.append(model_store.fetch_weights(NAME, [manifest]))

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        threads[0].start()
        # Bounded waits: a bug fails the test instead of hanging the suite.
        assert server.received.wait(120)  # The first holds lock and request.
        threads[1].start()
        assert waiting.wait(120)  # The second is at the lock.
        server.release.set()
        for thread in threads:
            thread.join()
        assert len(server.requests) == 1
    assert len(results) == 2 and results[0] == results[1]


def test_mirror(tmp_path, home, archive, monkeypatch):
    assert model_download.mirror_url("https://a.org/w/x.tar", "") == (
        "https://a.org/w/x.tar"
    )
    rules = "https://m.internal/all;https://a.org/w/=file:///srv/w/"
    assert model_download.mirror_url("https://a.org/w/x.tar", rules) == (
        "file:///srv/w/x.tar"
    )
    assert model_download.mirror_url("https://b.org/y.tar?q=1", rules) == (
        "https://m.internal/all/y.tar?q=1"
    )
    with pytest.raises(ValueError, match="two host-replacing prefixes"):
        model_download.mirror_url("https://a.org/x", "https://m1;https://m2")

    data, sha256 = archive
    with FileServer({"garden/w/toy.tar": data}) as server:
        manifest = _manifest(
            tmp_path / "m.json",
            _entry(
                url="https://weights.invalid/w/toy.tar", sha256=sha256, size=len(data)
            ),
        )
        monkeypatch.setenv("GARDEN_MIRROR", server.url("garden"))
        prefix = model_store.fetch_weights(NAME, [manifest])
        assert server.requests == [("garden/w/toy.tar", None)]
    np.testing.assert_array_equal(_value(prefix), [1.0, 2.0, 3.0])


def test_url_specs(tmp_path, home, archive):
    data, sha256 = archive
    path = tmp_path / "toy.tar"
    path.write_bytes(data)
    prefix = model_store.resolve_checkpoint_spec(f"file://{path}#sha256={sha256}")
    np.testing.assert_array_equal(_value(prefix), [1.0, 2.0, 3.0])
    # A plain path to an archive works too (unverified: the digest is logged).
    assert model_store.resolve_checkpoint_spec(str(path)).endswith("/weights")
    with pytest.raises(ValueError, match="must be #sha256=HEX"):
        model_store.resolve_checkpoint_spec(f"file://{path}#md5=abc")
    with pytest.raises(model_download.ChecksumError, match="expected sha256 0000"):
        model_store.resolve_checkpoint_spec(f"file://{path}#sha256={'0' * 64}")


def test_foreign_archive_is_refused(tmp_path):
    import tarfile

    with tarfile.open(tmp_path / "x.tar", "w") as tar:
        tar.add(__file__, arcname="../evil.py")
    with pytest.raises(ValueError, match="not a Garden weights archive.*evil"):
        weights_archive.extract_archive(str(tmp_path / "x.tar"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


_FETCH_SCRIPT = """
import fcntl, sys
from official.core import model_download
real_flock = fcntl.flock
def flock(fd, operation):
    if operation == fcntl.LOCK_EX:
        print("locking", flush=True)
    return real_flock(fd, operation)
fcntl.flock = flock
model_download.download(sys.argv[1], sys.argv[2], sys.argv[3])
"""


def test_two_processes_download_once(tmp_path, archive):
    data, sha256 = archive
    dest = str(tmp_path / "a.tar")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    with FileServer({"a.tar": data}, hold_first=True) as server:
        argv = [sys.executable, "-c", _FETCH_SCRIPT, server.url("a.tar"), dest, sha256]
        first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
        assert first.stdout.readline() == "locking\n"
        assert server.received.wait(120)  # It holds the lock and the request.
        second = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
        assert second.stdout.readline() == "locking\n"  # It waits on the lock.
        server.release.set()
        assert first.wait(120) == 0 and second.wait(120) == 0
        assert len(server.requests) == 1
    assert open(dest, "rb").read() == data
