"""Every kind the controller reconciles: one module each, found by ``controller.contract.registry``.

Adding a kind means adding a module here (its ``Kind`` subclass names its spec model); nothing
else needs to know. Kinds import the contract and never the engine.
"""
