"""Note: an SSM String parameter holding a text, published after the Activation it names.

A kind a test adds as a developer would: this one module holds its spec model (with a whole-set
check), observe (bulk reads), diff (pure, typed steps), apply, a dependency (on an Activation
manifest), health and a status gauge. Nothing else in the controller knows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.aws import AwsApi
from controller.aws.tags import tag_dict, tag_list
from controller.contract import is_owned, manifest_of, owner_tags
from controller.kinds.base import (
    Action,
    Context,
    Event,
    FieldChange,
    GaugeFamily,
    Health,
    Kind,
    KindPlan,
    KindStatus,
    Operation,
    Ref,
    ResourceStatus,
    Step,
)
from controller.manifests import DesiredState, Manifest, ManifestError, SpecModel

KIND = "Note"
PREFIX = "/fleet-controller/notes/"
LENGTH = GaugeFamily(
    name="note_length_chars", help="Characters the live note holds.", labels=("note",)
)


class NoteSpec(SpecModel):
    text: str
    activation: str  # the Activation manifest this note is published after

    @classmethod
    def check_set(cls, by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
        activations = {m.name for m in by_kind.get("Activation", [])}
        return [
            note.spec_error(("activation",), f"no Activation named {note.spec.activation!r}")
            for note in by_kind.get(KIND, [])
            if note.spec.activation not in activations
        ]


@dataclass(frozen=True)
class LiveNote:
    parameter: str
    value: str
    tags: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class PutNote(Step):
    parameter: str
    text: str
    tags: dict[str, str] | None  # only when creating: AWS refuses Tags with Overwrite


@dataclass(frozen=True, kw_only=True)
class DeleteNote(Step):
    parameter: str


class NoteKind(Kind[dict[str, LiveNote]]):
    kind = KIND
    spec_model = NoteSpec
    refers_to = frozenset({"Activation"})
    gauges = (LENGTH,)

    def references(self, manifest: Manifest, desired: DesiredState) -> list[Ref]:
        return [Ref("Activation", manifest.spec.activation)]

    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> dict[str, LiveNote]:
        filters = [{"Key": "Name", "Option": "BeginsWith", "Values": [PREFIX]}]
        notes: dict[str, LiveNote] = {}
        for item in aws.items("ssm", "DescribeParameters", ParameterFilters=filters):
            name = item["Name"]
            value = aws.call("ssm", "GetParameter", Name=name)["Parameter"]["Value"]
            tags = aws.call("ssm", "ListTagsForResource", ResourceType="Parameter", ResourceId=name)
            notes[name] = LiveNote(name, value, tag_dict(tags.get("TagList")))
        return notes

    def diff(self, desired: list[Manifest], live: dict[str, LiveNote], ctx: Context) -> KindPlan:
        plan = KindPlan()
        for manifest in desired:
            parameter = PREFIX + manifest.name
            note = live.get(parameter)
            if note is not None and not is_owned(note.tags, ctx.controller_id):
                plan.refuse_not_owned(KIND, manifest.name, f"parameter {parameter}", "left alone")
                continue
            if note is not None and note.value == manifest.spec.text:
                continue
            tags = owner_tags(ctx.controller_id, KIND, manifest.name)
            plan.operations.append(
                Operation(
                    kind=KIND,
                    name=manifest.name,
                    action=Action.CREATE if note is None else Action.UPDATE,
                    resource=parameter,
                    changes=(
                        FieldChange("text", note.value if note else None, manifest.spec.text),
                    ),
                    reason="the note differs from its manifest",
                    payload=PutNote(
                        parameter=parameter,
                        text=manifest.spec.text,
                        tags=tags if note is None else None,
                    ),
                )
            )
        declared = {PREFIX + m.name for m in desired}
        for parameter, note in sorted(live.items()):
            name = manifest_of(note.tags, KIND)
            if parameter not in declared and name and is_owned(note.tags, ctx.controller_id):
                plan.operations.append(
                    Operation(
                        kind=KIND,
                        name=name,
                        action=Action.DELETE,
                        resource=parameter,
                        reason="no manifest declares it any more",
                        prune=True,
                        payload=DeleteNote(parameter=parameter),
                    )
                )
        return plan

    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> tuple[Event, ...]:
        match operation.payload:
            case PutNote(parameter=parameter, text=text, tags=tags):
                params: dict[str, Any] = {"Name": parameter, "Value": text, "Type": "String"}
                if tags is None:
                    params["Overwrite"] = True
                else:
                    params["Tags"] = tag_list(tags)
                aws.call("ssm", "PutParameter", **params)
            case DeleteNote(parameter=parameter):
                aws.call("ssm", "DeleteParameter", Name=parameter)
            case other:
                raise TypeError(f"{KIND} cannot apply {type(other).__name__}")
        return ()

    def health(
        self, desired: list[Manifest], live: dict[str, LiveNote], ctx: Context
    ) -> KindStatus:
        status = KindStatus(
            managed=sum(1 for n in live.values() if is_owned(n.tags, ctx.controller_id)),
            gauges={LENGTH.name: {}},
        )
        for manifest in desired:
            note = live.get(PREFIX + manifest.name)
            if note is None:
                status.resources.append(ResourceStatus(name=manifest.name, health=Health.MISSING))
                continue
            status.gauges[LENGTH.name][(manifest.name,)] = float(len(note.value))
            changed = note.value != manifest.spec.text
            status.resources.append(
                ResourceStatus(
                    name=manifest.name,
                    health=Health.DEGRADED if changed else Health.HEALTHY,
                    message=f"the note says {note.value!r}, not its text" if changed else "",
                )
            )
        return status
