"""Is an event news, or the echo of what the cache holds? (pure: no sandbox)

An echo costs no AWS call, so calling news an echo loses a change until the next relist, and
calling an echo news doubles the calls of every write. Both directions are checked, for each kind
of claim an event makes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.contract import Changes
from controller.kinds.informer import FleetInformer
from controller.kinds.matching import LiveInstance, LiveWorkspace
from controller.service.events.news import is_news
from controller.service.events.notice import Notice

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
WS, MI = "ws-000000001", "mi-00000000000000001"


def _informer() -> FleetInformer:
    informer = FleetInformer()
    workspace = LiveWorkspace(
        WS, "d-1", "wsb-1", "AVAILABLE", "u", "WSAMZN-1", "10.0.0.1", tags={"A": "1", "B": "2"}
    )
    instance = LiveInstance(MI, "WSAMZN-1.corp", "10.0.0.1", "Online", T0, tags={"A": "1"})
    informer.relisted([workspace], [instance], "tagging-api", 0.0, T0, timedelta(minutes=15))
    return informer


def _on(resource: str, type_: str, **claims: object) -> Notice:
    changes = Changes(
        frozenset({resource} if resource.startswith("ws-") else set()),
        frozenset({resource} if resource.startswith("mi-") else set()),
    )
    return Notice(type_, "1", "r", changes, **claims)  # type: ignore[arg-type]


def test_a_tag_change_is_an_echo_only_when_the_cache_holds_its_whole_tag_set():
    informer = _informer()
    change = "Tag Change on Resource"
    assert not is_news(_on(WS, change, tags={"A": "1", "B": "2"}), informer)
    assert is_news(_on(WS, change, tags={"A": "1", "B": "3"}), informer)  # a new value
    assert is_news(_on(WS, change, tags={"A": "1"}), informer)  # a key removed
    assert is_news(_on(WS, change, tags={"A": "1", "B": "2", "C": ""}), informer)  # one added
    assert is_news(_on(WS, change, tags=None), informer)  # no readable tag set


def test_a_tag_call_is_an_echo_only_when_the_cache_holds_what_it_set_and_removed():
    informer = _informer()
    assert not is_news(_on(MI, "AddTagsToResource", added={"A": "1"}), informer)
    assert is_news(_on(MI, "AddTagsToResource", added={"A": "2"}), informer)
    assert is_news(_on(MI, "AddTagsToResource", added={"A": "1", "Z": "9"}), informer)
    assert not is_news(_on(MI, "RemoveTagsFromResource", removed=frozenset({"Z"})), informer)
    assert is_news(_on(MI, "RemoveTagsFromResource", removed=frozenset({"A"})), informer)
    assert is_news(_on(MI, "AddTagsToResource"), informer)  # says nothing it set: read it


def test_what_the_cache_does_not_know_or_is_no_tag_claim_is_news():
    informer = _informer()
    assert is_news(_on("ws-000000009", "Tag Change on Resource", tags={}), informer)
    assert is_news(_on(MI, "SSM Managed Instance Registration"), informer)
    assert is_news(_on(WS, "TerminateWorkspaces"), informer)
    both = Notice(
        "CreateTags", "1", "r", Changes(frozenset({WS}), frozenset({MI})), added={"A": "1"}
    )
    assert is_news(both, informer)  # two resources: not a claim about one
