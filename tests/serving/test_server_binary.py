"""serving.server's binary: flags, the start-up line, SIGTERM; no `official` import."""

import os
import re
import signal
import subprocess
import sys
import threading

import pytest
from absl import app, flags

from serving import server as server_lib
from serving.server import grpc_available
from tests.serving.tiny_model import assert_serving

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_flags(argv):
    fv = flags.FlagValues()
    server_lib.define_flags(fv)
    fv(["serving.server", *argv])
    return fv


def test_port_minus_one_binds_a_free_port_and_0_turns_a_front_end_off(model_root):
    base = f"--model_base_path={model_root / 'tiny'}"
    grpc_flag = "--port=-1" if grpc_available() else "--port=0"
    server = server_lib.server_from_flags(
        parse_flags(["--model_name=tiny", base, "--rest_api_port=-1", grpc_flag])
    )
    with server:
        assert server.rest_port > 0
        if grpc_available():
            assert server.grpc_port > 0 and server.grpc_port != server.rest_port
    with server_lib.server_from_flags(
        parse_flags([base, "--rest_api_port=-1", "--port=0"])
    ) as rest_only:
        assert rest_only.rest_port > 0 and rest_only.grpc_port is None
    with pytest.raises(app.UsageError, match=r"\[-1, 65535\].*Received: -2"):
        server_lib.server_from_flags(parse_flags([base, "--rest_api_port=-2"]))


def test_a_bad_config_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "models.config"
    path.write_text('model_config_list {\n  config { name: "a" basepath: "/m" }\n}\n')
    fv = parse_flags([f"--model_config_file={path}", "--port=0"])
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}:2:\d+: .*basepath"):
        server_lib.server_from_flags(fv)


# Runs the binary; at exit it prints the `official` modules it imported (none).
_RUN_BINARY = """
import atexit, runpy, sys
atexit.register(lambda: print("official modules:", sorted(
    m for m in sys.modules if m.split(".")[0] == "official"), flush=True))
sys.argv = ["serving.server", *sys.argv[1:]]
runpy.run_module("serving.server", run_name="__main__", alter_sys=True)
"""
STARTED = re.compile(
    r"Serving (.*) on REST http://127\.0\.0\.1:(\d+)(?: and gRPC 127\.0\.0\.1:(\d+))?\."
)


def test_binary_serves_and_exits_0_on_sigterm(model_root, expected):
    """The ports the binary picked (-1) are read from its start-up line."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _RUN_BINARY,
            "--model_name=tiny",
            f"--model_base_path={model_root / 'tiny'}",
            "--rest_api_port=-1",
            "--port=-1" if grpc_available() else "--port=0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    lines = []
    started = threading.Event()

    def read():
        for line in process.stdout:
            lines.append(line)
            if STARTED.search(line):
                started.set()
        started.set()  # the binary exited: stop waiting

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(90), "".join(lines)
        assert process.poll() is None, "".join(lines)
        match = STARTED.search("".join(lines))
        assert match.group(1) == "tiny"
        assert_serving(int(match.group(2)), expected)
        if grpc_available():
            assert match.group(3) and int(match.group(3)) != int(match.group(2))
        else:
            assert match.group(3) is None
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=10)
    output = "".join(lines)
    assert process.returncode == 0, output
    assert "Stopped." in output, output
    assert "official modules: []" in output, output
