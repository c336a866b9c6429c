"""Importers of weights trained elsewhere into Garden models.

`keras_applications.import_keras_application` maps keras.applications'
MobileNetV2 and EfficientNet B0-B7 (a model or its `.weights.h5` / `.h5`
file) onto Garden's `MobileNet` / `EfficientNet` backbones and
`ImageClassifier`, returning a `RestoreReport`; `tools/import_weights.py`
writes the result as a checkpoint for `trainer.init_checkpoint`.
"""
