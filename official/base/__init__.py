"""The lowest floor: config base, registries, parameter checks, name hints.

Nothing here imports TensorFlow, Keras or any other part of `official`.
"""
