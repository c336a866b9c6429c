"""Segmentation parity: pixel agreement, mIoU and the tolerances by kind."""

import numpy as np
import pytest

from official.core.parity_measures import ARTIFACT_KINDS
from official.vision.tasks import segmentation_parity


def test_segmentation_measures_pixel_agreement_and_miou():
    labels = np.array([[[0, 0, 1, 1], [0, 0, 1, 2]]])
    reference = labels.copy()
    candidate = labels.copy()
    candidate[0, 1, 3] = 1  # One of 8 pixels differs; class 2 is lost.
    m = segmentation_parity.segmentation_measures(reference, candidate, labels, 3)
    assert m["pixel_agreement"] == 7 / 8
    assert m["reference_miou"] == 1.0
    # IoU: class 0 = 4/4, class 1 = 3/4 (one extra pixel), class 2 = 0/1.
    assert m["miou"] == pytest.approx((1 + 0.75 + 0) / 3)
    assert m["miou_drop"] == pytest.approx(1 - 1.75 / 3)
    ignored = segmentation_parity.segmentation_measures(
        reference, candidate, labels, 2, ignore_label=2
    )
    assert ignored["miou"] == 1.0 and ignored["pixel_agreement"] == 7 / 8
    with pytest.raises(ValueError, match=r"outside 0..1"):
        segmentation_parity.mean_iou(candidate, labels, 2)
    with pytest.raises(ValueError, match="differ in shape"):
        segmentation_parity.segmentation_measures(
            reference, candidate[:, :1], labels, 3
        )


def test_every_artifact_kind_has_a_tolerance():
    assert set(segmentation_parity.SEGMENTATION_TOLERANCES) == set(ARTIFACT_KINDS)
    with pytest.raises(KeyError, match=r"segmentation .* 'int9'. Did you mean 'int8'"):
        segmentation_parity.segmentation_tolerance("int9")
