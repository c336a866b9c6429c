"""Keras 3 optimizers whose TensorFlow update runs in few ops per variable.

On TensorFlow, Keras 3 updates each variable with separate multiply, subtract
and assign ops, and its decoupled weight decay evaluates the learning-rate
schedule once more for every decayed variable (a warmup plus cosine schedule
is a dozen small ops each time). On a ResNet-50 that is thousands of tiny ops
per step, each costing more in scheduling than in arithmetic.

These subclasses compute the same updates with fewer ops:

- weight decay evaluates the schedule once per step and decays each variable
  with one `ResourceApplyGradientDescent` (`v -= lr * wd * v`);
- `SGD` applies momentum and Nesterov momentum with one
  `ResourceApplyKerasMomentum` per variable, TensorFlow's kernel for exactly
  Keras' formula (`m = momentum * m - lr * g; v += m`, or
  `v += momentum * m - lr * g` with Nesterov).

Everything else is the Keras class: arguments, slot variables and their names,
checkpoints, `get_config`. Other backends, sparse (`IndexedSlices`) gradients
and plain SGD without momentum take Keras' own code.

The overrides hook into private Keras methods and one private TensorFlow
function, checked with the versions pinned in setup.py (`_CHECKED_WITH`).
`build()` raises, naming the missing hook, when one of them is gone, rather
than quietly running slower code.

Example:
```python
import numpy as np
import keras
from official.modeling.optimization.optimizers import SGD

optimizer = SGD(learning_rate=0.1, momentum=0.9, weight_decay=1e-2)
variable = keras.Variable(np.array([1.0, -2.0], "float32"), name="kernel")
optimizer.apply_gradients([(np.array([0.5, -0.5], "float32"), variable)])
# v - lr*wd*v, then m = -lr*g and v += m.
np.testing.assert_allclose(variable.numpy(), [0.949, -1.948], rtol=1e-6)
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

# The versions the private hooks below were checked with (setup.py pins them).
_CHECKED_WITH = "keras>=3.15,<3.16 and tensorflow>=2.21,<2.22"


def _on_tensorflow() -> bool:
    return keras.backend.backend() == "tensorflow"


def _tf_maybe_merge_call():
    """`tf.__internal__.distribute.interim.maybe_merge_call`, or None."""
    module = tf
    for name in ("__internal__", "distribute", "interim", "maybe_merge_call"):
        module = getattr(module, name, None)
    return module


def _check_private_hooks(optimizer) -> None:
    """Raises when a Keras or TensorFlow internal the overrides use is gone."""
    keras_classes = [
        c for c in type(optimizer).__mro__ if c.__module__.split(".")[0] == "keras"
    ]
    keras_name = f"keras.optimizers.{keras_classes[0].__name__}"
    missing = [
        f"{keras_name}.{name}"
        for name in optimizer._KERAS_METHODS
        if not any(name in vars(c) for c in keras_classes)
    ]
    missing += [
        f"{keras_name} attribute `{name}`"
        for name in optimizer._keras_attributes()
        if not hasattr(optimizer, name)
    ]
    if _tf_maybe_merge_call() is None:
        missing.append("tf.__internal__.distribute.interim.maybe_merge_call")
    if missing:
        raise RuntimeError(
            f"{type(optimizer).__module__}.{type(optimizer).__name__} relies on "
            f"Keras and TensorFlow internals that Keras {keras.__version__} / "
            f"TensorFlow {tf.__version__} do not have: {', '.join(missing)}. Its "
            f"fused updates were checked with {_CHECKED_WITH} (setup.py); install "
            f"versions in that range, or use {keras_name} instead."
        )


def _tf_variable(variable):
    """The `tf.Variable` (or distributed variable) behind a Keras variable."""
    return variable.value if isinstance(variable, keras.Variable) else variable


class _ScheduleOnceWeightDecay:
    """Decoupled weight decay with one schedule evaluation per step."""

    # Private Keras methods the overrides replace or call.
    _KERAS_METHODS = ("_apply_weight_decay", "_use_weight_decay")

    def _keras_attributes(self) -> tuple[str, ...]:
        # Set by Keras' TensorFlow optimizer.
        return ("_distribution_strategy",)

    def build(self, variables):
        super().build(variables)
        if _on_tensorflow():
            _check_private_hooks(self)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or not _on_tensorflow():
            return super()._apply_weight_decay(variables)

        def apply_all(distribution, variables, **kwargs):
            # One evaluation of the schedule for every variable, in the
            # cross-replica context where the step counter is read.
            rate = tf.cast(self.learning_rate, tf.float32) * tf.cast(
                self.weight_decay, tf.float32
            )

            def decay(variable):
                alpha = tf.cast(rate, variable.dtype)
                return tf.raw_ops.ResourceApplyGradientDescent(
                    var=variable.handle, alpha=alpha, delta=tf.identity(variable)
                )

            for variable in variables:
                if self._use_weight_decay(variable):
                    distribution.extended.update(
                        _tf_variable(variable), decay, group=False
                    )

        _tf_maybe_merge_call()(apply_all, self._distribution_strategy, variables)


@keras.saving.register_keras_serializable(package="official")
class SGD(_ScheduleOnceWeightDecay, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with a fused momentum update on TensorFlow.

    Args:
        Those of `keras.optimizers.SGD`.
    """

    _KERAS_METHODS = _ScheduleOnceWeightDecay._KERAS_METHODS + (
        "update_step",
        "_get_variable_index",
    )

    def _keras_attributes(self) -> tuple[str, ...]:
        momentums = ("momentums",) if self.momentum != 0 else ()
        return super()._keras_attributes() + momentums

    def update_step(self, gradient, variable, learning_rate):
        if (
            not _on_tensorflow()
            or self.momentum == 0
            or isinstance(gradient, tf.IndexedSlices)
        ):
            return super().update_step(gradient, variable, learning_rate)
        variable = _tf_variable(variable)
        accumulator = _tf_variable(self.momentums[self._get_variable_index(variable)])
        dtype = variable.dtype
        return tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle,
            accum=accumulator.handle,
            lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype),
            momentum=tf.cast(self.momentum, dtype),
            use_nesterov=self.nesterov,
        )


@keras.saving.register_keras_serializable(package="official")
class Adam(_ScheduleOnceWeightDecay, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with one schedule evaluation for weight decay."""


@keras.saving.register_keras_serializable(package="official")
class AdamW(_ScheduleOnceWeightDecay, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with one schedule evaluation for weight decay."""


@keras.saving.register_keras_serializable(package="official")
class Lamb(_ScheduleOnceWeightDecay, keras.optimizers.Lamb):
    """`keras.optimizers.Lamb` with one schedule evaluation for weight decay."""


@keras.saving.register_keras_serializable(package="official")
class RMSprop(_ScheduleOnceWeightDecay, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with one schedule evaluation for weight decay."""
