"""AWS's tag wire format (a list of ``{"Key", "Value"}``) to and from a plain dict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def tag_dict(items: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """``[{"Key": k, "Value": v}, ...]`` as ``{k: v}``; a missing value (WorkSpaces allows one)
    reads as the empty string."""
    return {item["Key"]: item.get("Value", "") for item in items or []}


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """``{k: v}`` as AWS's tag list, sorted by key so requests are stable."""
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]
