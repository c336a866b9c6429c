"""Checks a config's `params` dict against a constructor's signature.

Configs that name a registered component by `type` and pass it `params`
(backbones, optimizers, learning-rate schedules) use the component's
signature as the schema: these checks run when the config is validated, so
a typo fails at load time, not after the model is built.

Example:
```python
from official.base.params_check import check_params, check_required_params

def block(filters, strides=1, input_shape=None):
    return filters

check_params(block, {"filters": 8}, "task.model.block.params")
check_required_params(block, {"filters": 8}, "task.model.block.params")
try:
    check_params(block, {"filter": 8}, "task.model.block.params")
except KeyError as e:
    assert "Did you mean 'filters'?" in str(e)
```
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from official.base.suggest import did_you_mean


def check_params(fn, params: dict, where: str, reserved: tuple = ()) -> None:
    """Raises when `params` has keys that `fn`'s signature does not accept.

    Args:
        fn: callable (a class or a function) whose signature is the schema.
        params: dict, the keyword arguments that will be passed to `fn`.
        where: str, dotted config path of `params`, used in error messages.
        reserved: tuple of str, arguments of `fn` that the caller sets itself
            and that `params` therefore must not contain.

    Raises:
        KeyError: a key is not an accepted argument; the message names the
            key, the closest valid key and all valid keys.
        TypeError: the arguments do not bind to the signature.
    """
    signature = inspect.signature(fn)
    accepted = [
        name
        for name, p in signature.parameters.items()
        if name not in ("self", *reserved)
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    for key in params:
        if key not in accepted:
            hint = did_you_mean(key, accepted)
            raise KeyError(
                f"Unknown config key '{where}.{key}' for {getattr(fn, '__name__', fn)}."
                f"{hint} Valid keys under {where!r}: {', '.join(sorted(accepted))}."
            )
    try:
        signature.bind_partial(**params)
    except TypeError as e:
        raise TypeError(f"{where}: {e}") from None


def required_params(fn: Callable[..., Any], reserved: tuple = ()) -> list[str]:
    """The arguments of `fn` that have no default, less `self` and `reserved`."""
    return [
        name
        for name, p in inspect.signature(fn).parameters.items()
        if name not in ("self", *reserved)
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is p.empty
    ]


def check_required_params(
    fn: Callable[..., Any], params: dict, where: str, reserved: tuple = ()
) -> None:
    """Raises when `params` lacks an argument that `fn` requires.

    Args:
        fn: callable whose signature is the schema.
        params: dict, the keyword arguments that will be passed to `fn`.
        where: str, dotted config path of `params`, used in error messages.
        reserved: tuple of str, required arguments that the caller sets itself.

    Raises:
        KeyError: naming the first missing key and all required keys.
    """
    required = required_params(fn, reserved)
    missing = [name for name in required if name not in params]
    if missing:
        raise KeyError(
            f"Missing config key '{where}.{missing[0]}' required by "
            f"{getattr(fn, '__name__', fn)}. Required keys under {where!r}: "
            f"{', '.join(required)}. Received: {sorted(params)}."
        )
