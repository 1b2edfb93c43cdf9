"""Placeholder: filled in by the sandbox work (issue 2)."""
