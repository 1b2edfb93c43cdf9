"""Is this machine that WorkSpace? The endpoint asks it of a caller (claimed name, source
address); the answer is the same one the Enrollment kind gives about the instance that registered
with a WorkSpace's activation, so both live in ``controller/kinds/matching.py``."""

from controller.kinds.matching import mismatch, same_computer

__all__ = ["mismatch", "same_computer"]
