"""Kind modules a test adds to ``controller.kinds`` the way a developer adds one: a single file.

The modules here are not imported as ``tests.added_kinds.*``: ``kindkit.added_kind`` copies one
into a directory it puts on the kinds package's path, so the registry discovers it exactly as it
discovers the built-in kinds, and nothing else in the tree is touched.
"""
