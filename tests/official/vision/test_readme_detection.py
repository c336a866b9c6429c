"""Runs the README section "Object detection" as written (slow).

Each fenced bash block of the section runs in a scratch directory (the
relative paths land there; `configs/` and `tools/` are linked in), with the
test's own Python first on PATH as `python`. Checks: the AP floor of
`retinanet_shapes`, the export's parity report (every artifact passed, no
TFLite file with a Flex op) and the parameter count the section states.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
SECTION = "### Object detection"
AP_FLOOR = 0.5  # retinanet_shapes: 0.61 measured, seeded.


def section_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n#", start + len(SECTION))
    return re.findall(r"```bash\n(.*?)```", text[start:end], flags=re.S)


def test_section_has_the_commands():
    (block,) = section_blocks()
    assert "--experiment=retinanet_shapes" in block
    assert "--experiment=retinanet_resnetfpn_coco" in block


@pytest.mark.slow
def test_readme_object_detection_runs_as_written(tmp_path):
    for name in ("configs", "tools"):
        os.symlink(ROOT / name, tmp_path / name)
    env = dict(os.environ)
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    outputs = []
    for block in section_blocks():
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        assert result.returncode == 0, (
            f"README block failed:\n{block}\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-6000:]}"
        )
        outputs.append(result.stdout)
    with open(tmp_path / "runs/detection_shapes/eval_results.json") as f:
        assert json.load(f)["AP"] >= AP_FLOOR
    export_dir = tmp_path / "exports/detection_shapes"
    with open(export_dir / "parity.json") as f:
        parity = json.load(f)
    assert parity["passed"] and not parity["unchecked"]
    assert {"model_float32.tflite", "model_int8.tflite"} <= set(parity["artifacts"])
    assert "34,091,159" in outputs[-1]
    # tools/benchmark_export.py timed every artifact, NMS included.
    assert all(
        f"{name} " in outputs[-1] and "median" in outputs[-1]
        for name in ("model_float32.tflite", "model_int8.tflite", "saved_model")
    )
