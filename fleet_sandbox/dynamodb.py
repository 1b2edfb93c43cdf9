"""DynamoDB's conditional writes, atomic as in DynamoDB.

moto checks a write's condition and then writes, with no lock between the two: two concurrent
conditional writes can both pass (two lease holders at once). DynamoDB decides each conditional
write atomically, so here every mutating method of moto's DynamoDB backend runs under one lock per
backend. Only the check-and-write is serialised; parsing, signing and serialising requests stay
concurrent, so racing clients wait milliseconds, not a queue of whole requests.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

MUTATIONS = ("put_item", "update_item", "delete_item", "transact_write_items")

_guard = threading.Lock()


def _lock_of(backend: Any) -> threading.RLock:
    with _guard:
        lock = backend.__dict__.get("_sandbox_write_lock")
        if lock is None:
            lock = backend.__dict__["_sandbox_write_lock"] = threading.RLock()
        return lock  # type: ignore[no-any-return]


def _atomic(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _lock_of(self):
            return method(self, *args, **kwargs)

    wrapper._sandbox_atomic = True  # type: ignore[attr-defined]
    return wrapper


for _name in MUTATIONS:
    _original = getattr(DynamoDBBackend, _name)
    if not getattr(_original, "_sandbox_atomic", False):
        setattr(DynamoDBBackend, _name, _atomic(_original))
