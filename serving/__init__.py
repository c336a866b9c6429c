"""After training: export (SavedModel signatures, TFLite, parity report).

Import the submodules you need (`serving.export`, `serving.parity`, ...).
This package's `__init__` imports nothing, so that the model server
(`serving/server*`) depends on TensorFlow only, never on `official`.
"""
