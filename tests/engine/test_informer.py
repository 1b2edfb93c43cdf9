"""The live cache's rules, one by one (pure: no sandbox).

A write or a consistent read outranks a lagging index until the index agrees or the consistency
window passes; a targeted read after a relist began outranks that relist; a resource found gone
never comes back from a list that still shows it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from controller.kinds.informer import FleetInformer
from controller.kinds.matching import LiveInstance, LiveWorkspace

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def _instance(instance_id: str = "mi-00000000000000001", **tags: str) -> LiveInstance:
    return LiveInstance(instance_id, "WSAMZN-1.corp", "10.0.0.1", "Online", T0, tags=tags)


def _workspace(workspace_id: str = "ws-000000001", **tags: str) -> LiveWorkspace:
    return LiveWorkspace(
        workspace_id, "d-1", "wsb-1", "AVAILABLE", "u", "WSAMZN-1", "10.0.0.1", tags=tags
    )


def _relist(informer: FleetInformer, workspaces, instances, at: datetime, started: float = 0.0):
    return informer.relisted(workspaces, instances, "tagging-api", started, at, WINDOW)


def _tags(informer: FleetInformer, instance_id: str = "mi-00000000000000001") -> dict[str, str]:
    found = informer.instance(instance_id)
    assert found is not None
    return dict(found.tags)


def test_a_write_outranks_the_lagging_index_until_it_catches_up():
    informer = FleetInformer()
    _relist(informer, [], [_instance(A="old")], T0)
    informer.wrote("mi-00000000000000001", {"A": "new"}, ["B"], T0)
    _relist(informer, [], [_instance(A="old", B="x")], T0 + timedelta(minutes=5))
    assert _tags(informer) == {"A": "new"}
    assert informer.pinned() == 1
    _relist(informer, [], [_instance(A="new")], T0 + timedelta(minutes=6))  # caught up
    assert informer.pinned() == 0
    # From now on the index is believed again: a later change by someone else shows.
    _relist(informer, [], [_instance(A="theirs")], T0 + timedelta(minutes=7))
    assert _tags(informer) == {"A": "theirs"}


def test_past_the_window_the_index_wins():
    informer = FleetInformer()
    _relist(informer, [], [_instance(A="old")], T0)
    informer.wrote("mi-00000000000000001", {"A": "new"}, [], T0)
    _relist(informer, [], [_instance(A="other")], T0 + WINDOW - timedelta(seconds=1))
    assert _tags(informer) == {"A": "new"}
    _relist(informer, [], [_instance(A="other")], T0 + WINDOW + timedelta(seconds=1))
    assert _tags(informer) == {"A": "other"} and informer.pinned() == 0


def test_a_consistent_read_pins_the_whole_tag_set():
    informer = FleetInformer()
    _relist(informer, [_workspace(A="1", B="2")], [], T0)
    informer.refreshed(["ws-000000001"], [], [_workspace(A="9")], [], T0)
    # A relist begun after the read (so only the pin speaks for it) whose index still lags.
    later = time.monotonic() + 1.0
    _relist(informer, [_workspace(A="1", B="2")], [], T0 + timedelta(minutes=1), started=later)
    found = informer.workspace("ws-000000001")
    assert found is not None and dict(found.tags) == {"A": "9"}  # B known absent, not merged


def test_a_targeted_read_during_a_relist_is_not_undone_by_it():
    informer = FleetInformer()
    _relist(informer, [_workspace(A="1")], [_instance()], T0)
    relist_began = time.monotonic()
    moved = replace(_workspace(A="2"), ip_address="10.0.0.2")  # a migrated WorkSpace
    informer.refreshed(["ws-000000001"], [], [moved], [], T0)
    # The relist read the WorkSpace before the event's read and the index still agrees with it.
    _relist(informer, [_workspace(A="1")], [_instance()], T0, started=relist_began)
    found = informer.workspace("ws-000000001")
    assert found is not None and dict(found.tags) == {"A": "2"}
    assert found.ip_address == "10.0.0.2"  # not only the tags (a pin keeps those): all of it


def test_what_was_found_gone_never_comes_back_from_a_list_that_still_shows_it():
    informer = FleetInformer()
    _relist(informer, [], [_instance()], T0)
    outcome = informer.refreshed([], ["mi-00000000000000001"], [], [], T0)
    assert outcome.gone_instances == {"mi-00000000000000001"}
    _relist(informer, [], [_instance()], T0 + timedelta(minutes=1))
    assert informer.instance("mi-00000000000000001") is None
    informer.deregistered("mi-00000000000000002", T0)
    _relist(informer, [], [_instance("mi-00000000000000002")], T0 + timedelta(minutes=2))
    assert informer.instance("mi-00000000000000002") is None


def test_a_resource_named_but_never_seen_is_not_visible_yet():
    informer = FleetInformer()
    _relist(informer, [], [], T0)
    outcome = informer.refreshed(["ws-000000009"], ["mi-00000000000000009"], [], [], T0)
    assert outcome.unseen_workspaces == {"ws-000000009"}
    assert outcome.unseen_instances == {"mi-00000000000000009"}
    assert not outcome.gone_workspaces and not outcome.gone_instances


def test_pins_of_resources_no_longer_listed_are_dropped():
    informer = FleetInformer()
    _relist(informer, [], [_instance(A="old")], T0)
    informer.wrote("mi-00000000000000001", {"A": "new"}, [], T0)
    _relist(informer, [], [], T0 + timedelta(minutes=1))  # deregistered by someone else
    assert informer.pinned() == 0 and informer.instance("mi-00000000000000001") is None
