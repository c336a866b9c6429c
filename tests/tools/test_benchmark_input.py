"""tools/benchmark_input.py: both pipelines measured on the same generated files."""

import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_benchmark_runs_on_generated_images(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "benchmark_input_tool", ROOT / "tools" / "benchmark_input.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    output = tmp_path / "results.json"
    code = tool.main(
        [
            "benchmark_input",
            "--experiment=resnet_digits",
            "--num_images=24",
            "--image_height=40",
            "--image_width=48",
            "--batch_size=4",
            "--num_batches=2",
            "--warmup_batches=1",
            "--repeats=1",
            f"--output_json={output}",
        ]
    )
    assert code == 0
    results = json.loads(output.read_text())
    rates = results["images_per_second"]
    assert set(rates) == {"experiment", "plain", "experiment_image_folder"}
    assert all(rate > 0 for rate in rates.values())
    assert results["image_size"] == [32, 32]
    assert "experiment / plain" in capsys.readouterr().out
