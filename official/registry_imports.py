"""Every module that registers experiments, tasks, backbones or optimizers.

The binaries import this module so that every name is registered; a test
checks that no registering module is missing from this list. Experiments are
listed in `official.registry_configs` (imported first, without TensorFlow);
everything else, which builds Keras models, is listed here.
"""

# isort: off
import official.registry_configs  # noqa: F401  (the experiments)
import official.modeling.optimization.components  # noqa: F401
import official.vision.backbones.efficientnet  # noqa: F401
import official.vision.backbones.mobilenet  # noqa: F401
import official.vision.backbones.resnet  # noqa: F401
import official.vision.backbones.vit  # noqa: F401
import official.vision.tasks.image_classification  # noqa: F401
import official.vision.heads.fcn_head  # noqa: F401
import official.vision.heads.deeplabv3_head  # noqa: F401
import official.vision.heads.deeplabv3plus_head  # noqa: F401
import official.vision.heads.encnet_head  # noqa: F401
import official.vision.tasks.semantic_segmentation  # noqa: F401
import official.nlp.tasks.sentence_prediction  # noqa: F401
import official.nlp.tasks.masked_lm  # noqa: F401
import official.vision.heads.retinanet_head  # noqa: F401
import official.vision.tasks.retinanet  # noqa: F401
import official.llm.tasks.causal_lm  # noqa: F401
