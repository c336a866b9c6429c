"""Every module that registers experiments; none imports TensorFlow or Keras.

`official.train` imports this module to answer `--help`, `--experiment=list`
and a mistyped config key without starting TensorFlow; a run then imports
`official.registry_imports` (which imports this one, then the backbones,
heads, tasks and optimizers) before the config is validated. A module that
registers an experiment is listed here, and a test checks that importing
this module imports neither TensorFlow nor Keras.
"""

# isort: off
import official.vision.experiments  # noqa: F401
import official.vision.experiments_mobile  # noqa: F401
import official.vision.experiments_vit  # noqa: F401
import official.vision.experiments_segmentation  # noqa: F401
import official.vision.experiments_image_folder  # noqa: F401
import official.vision.experiments_finetune  # noqa: F401
import official.vision.experiments_transfer  # noqa: F401
import official.nlp.experiments  # noqa: F401
import official.vision.experiments_detection  # noqa: F401
import official.llm.experiments  # noqa: F401
