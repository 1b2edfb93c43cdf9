"""Every kind the controller reconciles: one module each, found by ``controller.contract.registry``.

Adding a kind means adding a module here (its ``Kind`` subclass names its spec model); nothing
else needs to know. Kinds import the contract and never the engine. ``all_kinds`` and
``kind_named`` are the registry's, under the names this package used to define them by.
"""

from controller.contract.registry import kind_named
from controller.contract.registry import registered as all_kinds

__all__ = ["all_kinds", "kind_named"]
