"""serving.export on a bad checkpoint or a destination that cannot be written.

Each failure ends the binary with exit status 1 and one `error:` line naming
the file and the cause, and leaves a previous export as it was. The tiny
fake task and its weights come from `test_export.py`.

Tests run as root here, where chmod does not stop writes: a read-only or full
destination is simulated by making the relevant os/tempfile call or writer
raise the OSError (EACCES, EROFS, ENOSPC) the kernel would give.
"""

import errno
import os
import re
import shutil
import stat
import tempfile
import types

import pytest
import tensorflow as tf
from absl import flags

from official.core import checkpoints
from serving import export, export_dir
from tests.serving.test_export import FakeTask, set_trained_weights

PREVIOUS = {"export_report.json": "{}\n", "marker.txt": "the previous export\n"}


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    model = FakeTask().build_model()
    set_trained_weights(model)
    path = str(tmp_path_factory.mktemp("good_model_dir"))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), path, 1).save()
    return path


@pytest.fixture
def previous_export(tmp_path):
    """`tmp_path/export` holding a (fake) previous export."""
    path = tmp_path / "export"
    path.mkdir()
    for name, text in PREVIOUS.items():
        (path / name).write_text(text)
    return path


def assert_intact(previous_export):
    assert {p.name: p.read_text() for p in previous_export.iterdir()} == PREVIOUS
    leftovers = [p for p in os.listdir(previous_export.parent) if ".tmp-" in p]
    assert not leftovers


def run_main(monkeypatch, capsys, checkpoint_path, export_path, *argv):
    """serving.export's main on FakeTask; returns (exit code, the error lines)."""
    config = types.SimpleNamespace(task=None, to_yaml=lambda: "fake: true\n")
    monkeypatch.setattr(export, "load_experiment_config", lambda *a, **k: config)
    if hasattr(export, "run_config"):  # Reads the run's params.yaml.
        monkeypatch.setattr(
            export.run_config, "load_run_config", lambda *a, **k: (config, "fake")
        )
    monkeypatch.setattr(
        export,
        "export_experiment",
        lambda config, *args, **kwargs: export.export_task(FakeTask(), *args, **kwargs),
    )
    flag_values = flags.FlagValues()
    export.define_flags(flag_values)
    flag_values(
        [
            "export",
            "--experiment=fake",
            f"--checkpoint_path={checkpoint_path}",
            f"--export_dir={export_path}",
            "--formats=saved_model",
            "--num_parity_examples=2",
            *argv,
        ]
    )
    code = export.main([], flag_values)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("error:")]


# ---- a corrupt checkpoint ------------------------------------------------------------


def _truncate_data(prefix):
    path = prefix + ".data-00000-of-00001"
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    return path, r"is shorter than its index says \(truncated\): Read less bytes"


def _flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def _flip_data(prefix):
    path = prefix + ".data-00000-of-00001"
    _flip_byte(path, 500)
    return path, "is corrupt: .*Checksum does not match"


def _flip_index(prefix):
    path = prefix + ".index"
    _flip_byte(path, 100)
    return path, "is corrupt: .*block checksum mismatch"


def _missing_shard(prefix):
    path = prefix + ".data-00000-of-00001"
    os.remove(path)
    return path, "is missing"


CORRUPTIONS = {
    "truncated_data": _truncate_data,
    "bit_flipped_data": _flip_data,
    "bit_flipped_index": _flip_index,
    "missing_shard": _missing_shard,
}


@pytest.fixture(params=sorted(CORRUPTIONS))
def corrupt_checkpoint(request, tmp_path, good_checkpoint):
    """(prefix, the damaged file, a regex of its cause) for each corruption."""
    model_dir = tmp_path / "model_dir"
    shutil.copytree(good_checkpoint, model_dir)
    prefix = str(model_dir / "ckpt-1")
    path, cause = CORRUPTIONS[request.param](prefix)
    return prefix, path, cause


def test_corrupt_checkpoint_is_one_line_naming_the_file(
    corrupt_checkpoint, previous_export, monkeypatch, capsys
):
    prefix, path, cause = corrupt_checkpoint
    code, lines = run_main(monkeypatch, capsys, prefix, previous_export)
    assert code == 1
    (line,) = lines
    assert f"CheckpointError: Checkpoint {prefix!r} cannot be read: {path!r}" in line
    assert re.search(cause, line), line
    assert_intact(previous_export)


def test_corrupt_checkpoint_at_initialization(corrupt_checkpoint):
    """trainer.init_checkpoint reads through the same check; nothing changes."""
    prefix, path, _ = corrupt_checkpoint
    model = FakeTask().build_model()
    before = [v.numpy().copy() for v in model.variables]
    with pytest.raises(checkpoints.CheckpointError, match=path):
        checkpoints.initialize_from_checkpoint(model, prefix)
    for variable, value in zip(model.variables, before):
        assert (variable.numpy() == value).all()


# ---- a destination that cannot be written ------------------------------------------


def test_unwritable_parent_is_one_line(
    good_checkpoint, previous_export, monkeypatch, capsys
):
    monkeypatch.setattr(export_dir.os, "access", lambda path, mode: False)
    code, lines = run_main(monkeypatch, capsys, good_checkpoint, previous_export)
    assert code == 1
    (line,) = lines
    assert f"PermissionError: Cannot write into {str(previous_export.parent)!r}" in line
    assert_intact(previous_export)


def test_read_only_destination_is_one_line(
    good_checkpoint, previous_export, monkeypatch, capsys
):
    def read_only(prefix, dir):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)

    monkeypatch.setattr(export_dir.tempfile, "mkdtemp", read_only)
    code, lines = run_main(monkeypatch, capsys, good_checkpoint, previous_export)
    assert code == 1
    (line,) = lines
    assert (
        f"ExportWriteError: Cannot write the export {str(previous_export)!r}: "
        f"OSError: [Errno {errno.EROFS}] Read-only file system: "
        f"{str(previous_export.parent)!r}."
    ) in line
    assert_intact(previous_export)


def test_full_disk_midway_is_one_line(
    good_checkpoint, previous_export, monkeypatch, capsys
):
    """ENOSPC from a plain write (no file name in the error) after the
    SavedModel is written: the line names the directory being written."""

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export.parity, "write_report", full)
    code, lines = run_main(monkeypatch, capsys, good_checkpoint, previous_export)
    assert code == 1
    (line,) = lines
    assert (
        f"ExportWriteError: Cannot write the export {str(previous_export)!r}: "
        f"OSError: [Errno {errno.ENOSPC}] No space left on device (writing "
        f"'{previous_export.parent}/.export.tmp-"
    ) in line
    assert_intact(previous_export)


def test_full_disk_in_tensorflow_write_is_one_line(
    good_checkpoint, previous_export, monkeypatch, capsys
):
    """TensorFlow's own file writes (SavedModel) report ENOSPC as
    ResourceExhaustedError."""

    def full(model, signatures, path, default):
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{path}/variables/variables.data; No space left on device"
        )

    monkeypatch.setattr(export.saved_model_export, "write_saved_model", full)
    code, lines = run_main(monkeypatch, capsys, good_checkpoint, previous_export)
    assert code == 1
    (line,) = lines
    assert "ResourceExhaustedError: " in line
    assert "/saved_model/variables/variables.data; No space left on device." in line
    assert_intact(previous_export)


def test_a_failed_final_rename_keeps_the_previous_export(
    good_checkpoint, previous_export, monkeypatch, capsys
):
    real_rename = os.rename

    def rename(src, dst):
        if ".tmp-" in src:  # The new export's move; the previous one's works.
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), src, dst)
        real_rename(src, dst)

    monkeypatch.setattr(export_dir.os, "rename", rename)
    code, lines = run_main(monkeypatch, capsys, good_checkpoint, previous_export)
    assert code == 1
    (line,) = lines
    assert "ExportWriteError: Cannot write the export" in line
    assert "PermissionError: [Errno 13] Permission denied" in line
    monkeypatch.undo()
    assert_intact(previous_export)
    assert not [p for p in os.listdir(previous_export.parent) if ".old-" in p]


def test_an_unrelated_os_error_is_not_called_a_write_error(
    good_checkpoint, tmp_path, monkeypatch
):
    """A missing input file (ENOENT) keeps its own type and message."""

    def missing(task):
        raise FileNotFoundError(errno.ENOENT, "No such file", "/data/labels.txt")

    monkeypatch.setattr(export, "_class_names", missing)
    with pytest.raises(FileNotFoundError, match="/data/labels.txt"):
        export.export_task(
            FakeTask(),
            good_checkpoint,
            str(tmp_path / "export"),
            formats=["saved_model"],
            num_parity_examples=2,
        )
    assert os.listdir(tmp_path) == []


# ---- permissions of a finished export ------------------------------------------------


def test_export_gets_the_umask_permissions_not_mkdtemp_0700(good_checkpoint, tmp_path):
    old = os.umask(0o027)
    try:
        out = tmp_path / "export"
        export.export_task(
            FakeTask(),
            good_checkpoint,
            str(out),
            formats=["saved_model", "tflite"],
            quantizations=["none"],
            num_parity_examples=2,
        )
    finally:
        os.umask(old)
    modes = {str(out): stat.S_IMODE(os.stat(out).st_mode)}
    for root, dirs, files in os.walk(out):
        for name in dirs + files:
            path = os.path.join(root, name)
            modes[path] = stat.S_IMODE(os.stat(path).st_mode)
    wrong = {
        path: oct(mode)
        for path, mode in modes.items()
        if mode != (0o750 if os.path.isdir(path) else 0o640)
    }
    assert not wrong
    assert len(modes) > 5


def test_a_really_unwritable_parent_is_one_line(good_checkpoint, monkeypatch, capsys):
    """sysfs refuses new directories even to root (EPERM): a real refusal."""
    try:
        os.rmdir(tempfile.mkdtemp(dir="/sys"))
        pytest.skip("/sys accepts new directories here")
    except OSError:
        pass
    # sysfs reports 0 bytes free: skip that check to reach the real mkdir.
    monkeypatch.setattr(export, "_check_free_space", lambda *args: None)
    code, lines = run_main(monkeypatch, capsys, good_checkpoint, "/sys/garden_export")
    assert code == 1
    (line,) = lines
    assert (
        "ExportWriteError: Cannot write the export '/sys/garden_export': "
        "PermissionError: [Errno 1] Operation not permitted: '/sys/.garden_export.tmp-"
    ) in line
