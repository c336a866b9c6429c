"""serving.batching with the signatures of a real SavedModel (LoadedVersion).

`test_batching.py` checks the scheduler with a fake signature; these check
that batched calls of TensorFlow signatures give each request its own rows.
"""

import numpy as np
import pytest

from serving.batching import BatchScheduler
from serving.model_manager import LoadedVersion
from tests.serving.tiny_model import make_images, png


@pytest.fixture(scope="module")
def loaded(saved_model):
    return LoadedVersion("tiny", 1, saved_model)


def test_batching_joins_compatible_requests_and_splits_the_results(loaded):
    calls = []
    scheduler = BatchScheduler(
        max_batch_size=8,
        batch_timeout_micros=300_000,
        num_batch_threads=1,
        on_batch=lambda requests, rows: calls.append((requests, rows)),
    )
    signature = loaded.signatures["image_tensor"]
    try:
        requests = [make_images(1 + i % 2, size=8, seed=i) for i in range(5)]
        requests.append(make_images(2, size=16, seed=9))  # another shape: its own call
        futures = [
            scheduler.submit(signature, {"images": images}) for images, _ in requests
        ]
        results = [future.result(timeout=30) for future in futures]
    finally:
        scheduler.stop()
    for (images, labels), result in zip(requests, results, strict=True):
        assert result["classes"].tolist() == labels.tolist()
        alone = signature.run({"images": images})
        np.testing.assert_allclose(result["logits"], alone["logits"], atol=1e-5)
    assert sorted(calls) == [(1, 2), (5, 7)]


def test_a_bad_row_fails_only_its_own_request(loaded):
    scheduler = BatchScheduler(
        max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1
    )
    signature = loaded.signatures["image_bytes"]
    images, labels = make_images(3)
    inputs = [
        np.array([png(images[0])], object),
        np.array([b"junk"], object),
        np.array([png(images[2])], object),
    ]
    try:
        futures = [scheduler.submit(signature, {"image_bytes": x}) for x in inputs]
        assert futures[0].result(timeout=30)["classes"].tolist() == [labels[0]]
        with pytest.raises(Exception, match="failed on this input"):
            futures[1].result(timeout=30)
        assert futures[2].result(timeout=30)["classes"].tolist() == [labels[2]]
    finally:
        scheduler.stop()
