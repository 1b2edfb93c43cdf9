"""Is an event news to the live cache, or the echo of something it already holds?

Every tag write the controller makes comes back as events (a Tag Change and a CloudTrail record);
reading the instance again for each would double the calls of every change. An event whose claim
the cache already holds (the same whole tag set; a tag call whose keys and values, or removals,
are already there) says nothing new and costs nothing. Anything else (a resource the cache does
not know, a registration, a termination, a value it does not hold) is news. Skipping an echo is
safe: a later change brings its own event, and the relist sees everything.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.kinds.informer import FleetInformer
from controller.service.events.notice import TAG_CALLS, TAG_CHANGE, Notice


def is_news(notice: Notice, informer: FleetInformer) -> bool:
    named = [*notice.changes.workspaces, *notice.changes.instances]
    if len(named) != 1 or not (notice.type == TAG_CHANGE or notice.type in TAG_CALLS):
        return True
    (resource_id,) = named
    cached = informer.instance(resource_id) or informer.workspace(resource_id)
    if cached is None:
        return True
    tags: Mapping[str, str] = cached.tags
    if notice.type == TAG_CHANGE:
        return notice.tags is None or dict(tags) != dict(notice.tags)
    if not (notice.added or notice.removed):
        return True
    holds = all(tags.get(k) == v for k, v in notice.added.items())
    return not (holds and not (notice.removed & tags.keys()))


__all__ = ["is_news"]
