"""Runs the README section "Speed on a CPU" as written.

The first block (Garden's own benchmark) always runs. The second (ResNet
classifiers and the two training binaries) and the third (RetinaNet and
BERT-Base) compare with tf-models-official 2.20, whose virtual environment
the tools make with pip on first use: they run where that environment is
already made (`$GARDEN_HOME/benchmark/tf-models-official-2.20`), since tests
download nothing.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECTION = "### Speed on a CPU"


def section_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n### ", start + len(SECTION))
    return re.findall(r"```bash\n(.*?)```", text[start:end], flags=re.S)


def _run(code: str) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, f"{code}\n{result.stderr[-3000:]}"
    return result.stdout


def test_the_section_has_its_three_blocks():
    own, comparison, families = section_blocks()
    assert own.count("python tools/benchmark_train.py") == 2
    assert "--reference=tf_models_official" in comparison
    assert "python tools/benchmark_binaries.py" in comparison
    assert families.count("--reference=tf_models_official") == 2
    assert "--experiment=retinanet_resnetfpn_coco" in families
    assert "--experiment=bert_sentence_prediction" in families


@pytest.mark.slow
def test_benchmark_commands_run_as_written():
    out = _run(section_blocks()[0])
    assert out.count("examples/s") >= 2
    assert out.count("CPU time per step") == 2
    assert "oneDNN on" in out or sys.platform != "linux"


def _skip_without_reference_venv() -> None:
    from official.core.model_store import garden_home

    venv = pathlib.Path(garden_home()) / "benchmark" / "tf-models-official-2.20"
    if not (venv / ".garden-reference-ready").exists():
        pytest.skip(f"needs the tf-models-official venv at {venv} (made with pip)")


@pytest.mark.slow
def test_comparison_commands_run_as_written():
    _skip_without_reference_venv()
    out = _run(section_blocks()[1])
    assert "Garden / reference" in out
    assert "Garden / tf-models-official:" in out


@pytest.mark.slow
def test_detection_and_bert_comparisons_run_as_written():
    _skip_without_reference_venv()
    out = _run(section_blocks()[2])
    assert out.count("Garden / reference") == 2
    assert "(retinanet)" in out and "(sentence_prediction)" in out
