"""Runs the README section "Fine-tune a causal language model" as written (slow).

Each command of the section's block runs in order in a scratch directory with
the test's Python as `python`. This is the demo: the pretrained model's
held-out exact-match (the `--mode=eval` command) must stay near zero and
SFT must lift it above `SFT_EXACT_MATCH_FLOOR`; the export must pass its
greedy parity.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[3]
SECTION = "### Fine-tune a causal language model"
BEFORE_SFT_CEILING = 0.1
SFT_EXACT_MATCH_FLOOR = 0.8


def section_commands() -> list[str]:
    """The shell commands of the section's fenced bash blocks, in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n#", start + len(SECTION))
    blocks = re.findall(r"```bash\n(.*?)```", text[start:end], flags=re.S)
    commands = []
    for block in blocks:
        commands += [
            c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()
        ]
    return commands


def test_readme_commands_run_and_sft_lifts_exact_match(tmp_path):
    env = dict(os.environ)
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    (tmp_path / "tools").symlink_to(ROOT / "tools")
    commands = section_commands()
    assert len(commands) == 6
    results = {}
    for command in commands:
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        print(f"[{time.monotonic() - started:.0f} s] {command[:90]}")
        assert done.returncode == 0, f"{command}\n{done.stderr[-5000:]}"
        if "--mode=eval" in command:
            with open(tmp_path / "runs/arith_pretrain/eval_results.json") as f:
                results["before"] = json.load(f)
    with open(tmp_path / "runs/arith_sft/eval_results.json") as f:
        results["after"] = json.load(f)
    before, after = results["before"]["exact_match"], results["after"]["exact_match"]
    print(f"held-out exact-match: before SFT {before:.3f}, after {after:.3f}")
    assert len(results["after"]["generations"]) == 80
    assert before <= BEFORE_SFT_CEILING
    assert after >= SFT_EXACT_MATCH_FLOOR
    with open(tmp_path / "exports/arith/parity.json") as f:
        parity = json.load(f)
    assert parity["passed"] and parity["saved_model"]["token_agreement"] == 1.0
    shards = sorted((tmp_path / "data/arith/records").iterdir())
    assert [p.name for p in shards] == [
        "sft_train-00000-of-00002.tfrecord",
        "sft_train-00001-of-00002.tfrecord",
    ]
