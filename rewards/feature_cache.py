"""Share expensive forwards between rewards that score the same batch together (e.g. CLIPScore + LAION aesthetic).

Inside ``with feature_scope():`` (opened by :class:`~rewards.combine.CombinedReward` around its members' calls),
:func:`cached` computes ``fn()`` once per ``(images object, key)`` and returns the stored result afterwards. Outside a
scope nothing is cached, so a reward never sees features of images that changed in place between two calls. The
scope keeps the images alive, so ``id(images)`` cannot be reused while it is open.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar
from typing import TypeVar

import torch

__all__ = ["feature_scope", "cached"]

T = TypeVar("T")
_scope: ContextVar[dict | None] = ContextVar("evosearch_reward_feature_scope", default=None)


@contextlib.contextmanager
def feature_scope() -> Iterator[None]:
    """Open (or join) a caching scope; nested scopes share the outermost one."""
    if _scope.get() is not None:
        yield
        return
    token = _scope.set({})
    try:
        yield
    finally:
        _scope.reset(token)


def cached(images: torch.Tensor, key: Hashable, fn: Callable[[], T]) -> T:
    """``fn()``, computed once per ``(images, key)`` inside a :func:`feature_scope`, every time outside one."""
    store = _scope.get()
    if store is None:
        return fn()
    slot = (id(images), key)
    if slot not in store:
        store[slot] = (images, fn())
    return store[slot][1]
