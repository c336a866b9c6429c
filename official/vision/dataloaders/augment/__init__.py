"""Image augmentation for input pipelines, one module per family.

- `autoaugment`: AutoAugment (the v0 policy) and RandAugment, on uint8 images;
- `augment_ops`: the image operations they choose from;
- `color_jitter`: brightness, contrast, saturation and hue jitter;
- `scale_jitter`: random rescale, then crop or pad to the output size;
- `random_erasing`: erase a random rectangle of a (normalized) image;
- `mixup_cutmix`: batch-level mixup and cutmix of images and soft labels.

Every random function takes `seed`, an int32 or int64 `[2]` tensor, and draws
only with stateless random ops: the same seed gives the same result, eagerly
or inside `tf.data.Dataset.map`, at any parallelism. `seed=None` draws a seed
from TensorFlow's global generator (different on every call). The functions
use `tf.cond` / `tf.switch_case` explicitly and are excluded from AutoGraph,
which would otherwise take seconds to convert AutoAugment's branches each
time a pipeline is traced.
"""
