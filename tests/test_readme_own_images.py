"""Runs the README section "Train on your own images" as written.

Every fenced block of the section runs in order in a scratch directory (the
relative paths of the README land there; `tools/` is linked in), with the
test's own Python first on PATH as `python`. The block that starts the model
server runs in the background until the next block (the curl commands) is
done. The train command also runs a second time, as the section says to
resume. Checks: the validation accuracy floor the section states, the
export's files, the LiteRT snippet's answer and the server's answers.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECTION = "## Train on your own images"
ACCURACY_FLOOR = 0.95
PORT = 8501  # As the section writes it.


def section_blocks() -> list[tuple[str, str]]:
    """`(language, code)` of each fenced bash/python block of the section."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end > 0 else None]
    return re.findall(r"```(bash|python)\n(.*?)```", section, flags=re.S)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _run(language: str, code: str, cwd: pathlib.Path) -> tuple[str, str]:
    """Runs one block; returns its (stdout, stderr)."""
    command = ["bash", "-euo", "pipefail", "-c", code]
    if language == "python":
        command = [sys.executable, "-c", code]
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=1200
    )
    elapsed = time.monotonic() - started
    # Measured and reported, never asserted.
    print(f"[{elapsed:.0f} s] {code.strip().splitlines()[0]}")
    assert result.returncode == 0, (
        f"README block failed ({result.returncode}):\n{code}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-6000:]}"
    )
    return result.stdout, result.stderr


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait_for_server(process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"The server exited with {process.returncode}:\n"
                f"{process.stdout.read()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{PORT}/v1/models/shapes", timeout=2
            ) as response:
                if b"AVAILABLE" in response.read():
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"The server did not answer within {timeout_s} s.")


def test_section_has_the_blocks_this_test_expects():
    blocks = section_blocks()
    assert [language for language, _ in blocks] == [
        "bash",
        "bash",
        "python",
        "bash",
        "bash",
    ]
    assert "--experiment=image_folder" in blocks[0][1]
    assert "serving.server" in blocks[3][1]


@pytest.mark.slow
def test_readme_own_images_section_runs_as_written(tmp_path):
    blocks = section_blocks()
    (tmp_path / "tools").symlink_to(ROOT / "tools")
    train_block, export_block, litert_block, serve_block, query_block = blocks

    _run(*train_block, tmp_path)
    model_dir = tmp_path / "runs" / "shapes_folder"
    results = json.loads((model_dir / "eval_results.json").read_text())
    print(f"validation accuracy {results['accuracy']:.3f} at step {results['step']}")
    assert results["accuracy"] >= ACCURACY_FLOOR, results
    params = (model_dir / "params.yaml").read_text()
    assert "num_classes: 3" in params

    # "Run the same command again": it resumes at the end and only evaluates.
    train_command = train_block[1].split("python -m official.train", 1)[1]
    _, log = _run("bash", "python -m official.train" + train_command, tmp_path)
    assert "Restored" in log, log[-3000:]
    again = json.loads((model_dir / "eval_results.json").read_text())
    assert again["step"] == results["step"]

    _run(*export_block, tmp_path)
    assert (model_dir / "curves.png").stat().st_size > 0
    export_dir = tmp_path / "exports" / "shapes_folder"
    for name in (
        "saved_model/saved_model.pb",
        "model_float32.tflite",
        "model_int8.tflite",
        "labels.txt",
        "parity.json",
    ):
        assert (export_dir / name).is_file(), name
    labels = (export_dir / "labels.txt").read_text().split()
    assert labels == ["circles", "squares", "stripes"]

    out, _ = _run(*litert_block, tmp_path)
    assert out.strip().startswith("stripes ["), out[-2000:]

    if not _port_free(PORT):
        pytest.skip(f"Port {PORT}, which the README names, is taken on this machine.")
    *setup, server_command = re.split(
        r"\n(?=python -m serving\.server)", serve_block[1]
    )
    for part in setup:
        _run("bash", part, tmp_path)
    server = subprocess.Popen(
        ["bash", "-c", "exec " + server_command],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_server(server)
        out, _ = _run(*query_block, tmp_path)
        assert "AVAILABLE" in out, out[-2000:]
        match = re.search(r'"classes":\s*\[?\s*(\d)', out)
        assert match and labels[int(match.group(1))] == "circles", out[-2000:]
        # :classify lists [name, probability] per class; the square wins.
        result_at = out.rindex('"result"')
        answer = json.loads(out[out.rindex("{", 0, result_at) :])
        best = max(answer["result"][0], key=lambda pair: pair[1])
        assert best[0] == "squares", answer
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
