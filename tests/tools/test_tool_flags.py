"""Every tool answers --help and names a bad flag instead of a traceback."""

import importlib

import pytest

TOOLS = [
    "benchmark_input",
    "benchmark_train",
    "convert_coco",
    "convert_image_folder",
    "convert_voc_segmentation",
    "import_weights",
    "load_test",
    "model_summary",
    "plot_curves",
    "publish_weights",
]


@pytest.mark.parametrize("name", TOOLS)
def test_help_and_bad_flag(name, capsys):
    tool = importlib.import_module(f"tools.{name}")
    assert tool.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert tool.__doc__.strip().splitlines()[0] in out
    assert "flags:" in out
    assert tool.main([name, "--no_such_flag=1"]) == 2
    err = capsys.readouterr().err
    assert "no_such_flag" in err and "--help" in err


# These import TensorFlow before parsing flags: ~5 s each in a fresh process.
_IMPORT_TF_FIRST = ("benchmark_train", "plot_curves")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in _IMPORT_TF_FIRST else n
        for n in TOOLS
    ],
)
def test_every_tool_runs_as_a_script_from_the_checkout(name, tmp_path):
    """`python tools/NAME.py --help` works from any directory, uninstalled."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, os.path.join(root, "tools", f"{name}.py"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
    assert "flags:" in result.stdout, name
