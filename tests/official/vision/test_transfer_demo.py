"""Pretraining on shapes helps digits: frozen-backbone fine-tuning beats scratch."""

import pytest

from official.vision import transfer_demo


@pytest.mark.slow  # three training runs: see transfer_demo.MEASURED for times
def test_finetuned_beats_scratch_at_the_same_step_count(tmp_path):
    result = transfer_demo.run_transfer_demo(str(tmp_path))
    assert result["pretrain_accuracy"] >= 0.8, result
    assert result["finetuned_accuracy"] > result["scratch_accuracy"], result
