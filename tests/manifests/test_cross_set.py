"""Checks that span documents: TagSyncs that may select one WorkSpace must not share a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.manifests import InvalidDesiredState, load_desired_state

D1, D2, D3 = "d-1111111111", "d-2222222222", "d-3333333333"


def tagsync(name: str, spec: str) -> str:
    return (
        "apiVersion: fleet-controller/v1alpha1\nkind: TagSync\n"
        f"metadata:\n  name: {name}\nspec:\n{spec}"
    )


def test_overlapping_tagsyncs_may_not_share_keys(tmp_path: Path) -> None:
    # Each document is 7 lines and a "---": document k (from 0) ends on line 8k + 7.
    docs = [
        tagsync("a", f"  workspaces: {{directoryIds: [{D1}]}}\n  staticTags: {{Team: a}}\n"),
        tagsync("b", "  workspaces: {bundleIds: [wsb-11111111]}\n  copyTags: {include: [Te*]}\n"),
        tagsync("c", f"  workspaces: {{directoryIds: [{D2}]}}\n  staticTags: {{Team: c}}\n"),
        tagsync("d", f"  workspaces: {{directoryIds: [{D1}, {D3}]}}\n  staticTags: {{Other: d}}\n"),
        tagsync(
            "e", f"  workspaces: {{directoryIds: [{D3}]}}\n  attributes: {{userName: Other}}\n"
        ),
    ]
    (tmp_path / "syncs.yaml").write_text("---\n".join(docs))
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path)
    found = [(e.name, e.line, e.field) for e in raised.value.errors]
    assert found == [
        ("b", 15, "spec.copyTags.include[0]"),  # copies Team, which a writes (a: any bundle)
        ("c", 23, "spec.staticTags.Team"),  # b may select c's WorkSpaces and copies Team
        ("e", 39, "spec.attributes.userName"),  # d and e share D3; both write Other
    ]
    messages = [e.message for e in raised.value.errors]
    assert "pattern 'Te*' copies tag key 'Team'" in messages[0] and "TagSync/a" in messages[0]
    assert "also written by TagSync/b" in messages[1]
    assert "also written by TagSync/d" in messages[2]


def test_disjoint_selections_may_share_keys(tmp_path: Path) -> None:
    docs = [
        tagsync("a", f"  workspaces: {{directoryIds: [{D1}]}}\n  staticTags: {{Team: a}}\n"),
        tagsync("b", f"  workspaces: {{directoryIds: [{D2}]}}\n  staticTags: {{Team: b}}\n"),
        tagsync("c", "  workspaces: {bundleIds: [wsb-11111111]}\n  staticTags: {Tier: c}\n"),
        tagsync("d", "  workspaces: {bundleIds: [wsb-22222222]}\n  staticTags: {Tier: d}\n"),
    ]
    (tmp_path / "syncs.yaml").write_text("---\n".join(docs))
    state = load_desired_state(tmp_path)
    assert [m.name for m in state.of_kind("TagSync")] == ["a", "b", "c", "d"]
