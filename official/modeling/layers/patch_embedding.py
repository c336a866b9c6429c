"""Splits images into non-overlapping patches and projects each to a token."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="official")
class PatchEmbedding(keras.layers.Layer):
    """Image to patch tokens: a convolution with kernel = stride = patch size.

    Each non-overlapping `patch_size x patch_size` patch is linearly projected
    to `hidden_size` channels (the ViT "linear projection of flattened
    patches", written as one strided convolution), and the grid of patches is
    flattened row by row into a sequence of tokens.

    Args:
        hidden_size: int, channels of each token.
        patch_size: int, side of the square patches; the input's height and
            width must be multiples of it when they are known.
        kernel_initializer: str or `keras.initializers.Initializer`, for the
            projection kernel. Defaults to "glorot_uniform".
        use_bias: bool, whether the projection has a bias. Defaults to True.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, height, width, channels)`.

    Returns:
        Tensor of shape `(batch, (height / patch_size) * (width / patch_size),
        hidden_size)`.

    Example:
    ```python
    import numpy as np
    from official.modeling.layers.patch_embedding import PatchEmbedding

    layer = PatchEmbedding(hidden_size=8, patch_size=4)
    tokens = layer(np.ones((2, 16, 12, 3), "float32"))
    assert tuple(tokens.shape) == (2, 4 * 3, 8)
    ```
    """

    def __init__(
        self,
        hidden_size,
        patch_size,
        kernel_initializer="glorot_uniform",
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            not isinstance(patch_size, int)
            or isinstance(patch_size, bool)
            or patch_size < 1
        ):
            raise ValueError(
                "`patch_size` must be a positive int. Received: "
                f"patch_size={patch_size!r}."
            )
        self.hidden_size = hidden_size
        self.patch_size = patch_size
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.use_bias = use_bias
        self.projection = keras.layers.Conv2D(
            hidden_size,
            kernel_size=patch_size,
            strides=patch_size,
            padding="valid",
            use_bias=use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="projection",
        )

    def build(self, input_shape):
        for axis, size in (("height", input_shape[1]), ("width", input_shape[2])):
            if size is not None and size % self.patch_size:
                raise ValueError(
                    f"PatchEmbedding: the input {axis} ({size}) is not a multiple "
                    f"of patch_size ({self.patch_size}). Received: input_shape="
                    f"{tuple(input_shape)}, patch_size={self.patch_size}."
                )
        self.projection.build(input_shape)

    def call(self, inputs):
        x = self.projection(inputs)
        height, width = x.shape[1], x.shape[2]
        if height is not None and width is not None:
            # Static shapes keep the graph simple for TFLite.
            return keras.ops.reshape(x, (-1, height * width, self.hidden_size))
        shape = keras.ops.shape(x)
        return keras.ops.reshape(x, (shape[0], shape[1] * shape[2], self.hidden_size))

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            return (input_shape[0], None, self.hidden_size)
        tokens = (height // self.patch_size) * (width // self.patch_size)
        return (input_shape[0], tokens, self.hidden_size)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "patch_size": self.patch_size,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "use_bias": self.use_bias,
        }
