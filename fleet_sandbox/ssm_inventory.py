"""Inventory: what the agents report through ``aws:softwareInventory``, and the APIs that read it.

An AWS-GatherSoftwareInventory run (an association or a command) makes the simulated agent
collect, per enabled type: AWS:InstanceInformation (always), AWS:Application (every uninstall key in
the machine's registry, both views, and every MSI product, merged by product code), AWS:AWSComponent
(the SSM Agent) and AWS:Service (its Windows services). GetInventory, ListInventoryEntries and
GetInventorySchema serve it with their filters and paging. Aggregators are not simulated: asking
for one is an InvalidAggregatorException that says so.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleet_sandbox import agent, ssm_documents
from fleet_sandbox.agent import StepResult
from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.machine import fold
from fleet_sandbox.state import ManagedInstance, attached, fleet_state, ssm_backend

SCHEMA_VERSION = "1.0"
# Where programs register their uninstall entries, as physical (folded) key paths, per view.
_UNINSTALL_VIEWS = (
    (fold("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\"), "x86_64"),
    (fold("HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\"), "i386"),
)

# Attribute names and data types per type (AWS's inventory schemas for these types).
SCHEMAS: dict[str, dict[str, str]] = {
    "AWS:InstanceInformation": {
        "AgentType": "string",
        "AgentVersion": "string",
        "ComputerName": "string",
        "InstanceId": "string",
        "InstanceStatus": "string",
        "IpAddress": "string",
        "PlatformName": "string",
        "PlatformType": "string",
        "PlatformVersion": "string",
        "ResourceType": "string",
    },
    "AWS:Application": {
        "Name": "string",
        "ApplicationType": "string",
        "Publisher": "string",
        "Version": "string",
        "InstalledTime": "string",
        "Architecture": "string",
        "URL": "string",
        "Summary": "string",
        "PackageId": "string",
    },
    "AWS:AWSComponent": {
        "Name": "string",
        "ApplicationType": "string",
        "Publisher": "string",
        "Version": "string",
        "InstalledTime": "string",
        "Architecture": "string",
        "URL": "string",
    },
    "AWS:Service": {
        "Name": "string",
        "DisplayName": "string",
        "ServiceType": "string",
        "Status": "string",
        "DependentServices": "string",
        "ServicesDependedOn": "string",
        "StartType": "string",
    },
}
_SWITCHES = {
    "AWS:Application": "applications",
    "AWS:AWSComponent": "awsComponents",
    "AWS:Service": "services",
}


@dataclass
class Item:
    type_name: str
    captured: datetime
    content: list[dict[str, str]]

    @property
    def content_hash(self) -> str:
        text = json.dumps(self.content, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "TypeName": self.type_name,
            "SchemaVersion": SCHEMA_VERSION,
            "CaptureTime": self.captured.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ContentHash": self.content_hash,
            "Content": self.content,
        }


@dataclass
class InventoryStore:
    items: dict[str, dict[str, Item]] = field(default_factory=dict)  # instance -> type -> item
    lock: threading.RLock = field(default_factory=threading.RLock)


def store(account_id: str, region: str) -> InventoryStore:
    return attached(ssm_backend(account_id, region), InventoryStore)


# --- collection ----------------------------------------------------------------------------------


def _instance_information(instance: ManagedInstance) -> list[dict[str, str]]:
    return [
        {
            "AgentType": "amazon-ssm-agent",
            "AgentVersion": instance.agent_version,
            "ComputerName": instance.computer_name,
            "InstanceId": instance.instance_id,
            "InstanceStatus": "Active",
            "IpAddress": instance.ip_address,
            "PlatformName": instance.platform_name,
            "PlatformType": instance.platform_type,
            "PlatformVersion": instance.platform_version,
            "ResourceType": "ManagedInstance",
        }
    ]


def _uninstall_view(path: str) -> tuple[str, str] | None:
    """(entry name, architecture) when ``path`` is an entry right under an Uninstall key."""
    folded = fold(path)
    for prefix, architecture in _UNINSTALL_VIEWS:
        leaf = path[len(prefix) :]
        if folded.startswith(prefix) and leaf and "\\" not in leaf:
            return leaf, architecture
    return None


def applications(instance: ManagedInstance) -> list[dict[str, str]]:
    """Installed programs as Windows lists them: uninstall keys, MSI products merged in."""
    machine = instance.agent
    found: dict[str, dict[str, str]] = {}
    for key in machine.registry.values():
        view = _uninstall_view(key.path)
        if view is None:
            continue
        leaf, architecture = view
        values = {name: "" if v.data is None else str(v.data) for name, v in key.values.items()}
        found[leaf.upper()] = {
            "Name": values.get(fold("DisplayName"), leaf),
            "ApplicationType": "",
            "Publisher": values.get(fold("Publisher"), ""),
            "Version": values.get(fold("DisplayVersion"), ""),
            "InstalledTime": values.get(fold("InstallDate"), ""),
            "Architecture": architecture,
            "URL": values.get(fold("URLInfoAbout"), ""),
            "Summary": "",
            "PackageId": leaf.upper() if leaf.startswith("{") else "",
        }
    for code, product in machine.msi_products.items():
        if product.state != "installed":
            continue  # advertised or another user's: not installed for the machine
        entry = found.setdefault(
            code.upper(),
            {
                "Name": code.upper(),
                "ApplicationType": "",
                "Publisher": "",
                "Version": product.version,
                "InstalledTime": "",
                "Architecture": "x86_64",
                "URL": "",
                "Summary": "",
                "PackageId": code.upper(),
            },
        )
        entry["PackageId"] = code.upper()
        entry["Version"] = entry["Version"] or product.version
    return sorted(found.values(), key=lambda e: (e["Name"].casefold(), e["PackageId"]))


def _components(instance: ManagedInstance) -> list[dict[str, str]]:
    return [
        {
            "Name": "amazon-ssm-agent",
            "ApplicationType": "",
            "Publisher": "Amazon Web Services",
            "Version": instance.agent_version,
            "InstalledTime": instance.registration_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Architecture": "x86_64",
            "URL": "",
        }
    ]


def _services(instance: ManagedInstance) -> list[dict[str, str]]:
    return [
        {
            "Name": name,
            "DisplayName": name,
            "ServiceType": "Win32OwnProcess",
            "Status": service.state,
            "DependentServices": "",
            "ServicesDependedOn": "",
            "StartType": service.start_type,
        }
        for name, service in sorted(instance.agent.services.items())
    ]


_COLLECTORS = {
    "AWS:Application": applications,
    "AWS:AWSComponent": _components,
    "AWS:Service": _services,
}


def collect(
    account_id: str, region: str, instance: ManagedInstance, inputs: dict[str, Any]
) -> list[str]:
    """Record the instance's inventory now; returns the types collected."""
    now = clock.now()
    collected = {
        "AWS:InstanceInformation": Item(
            "AWS:InstanceInformation", now, _instance_information(instance)
        )
    }
    for type_name, collector in _COLLECTORS.items():
        if str(inputs.get(_SWITCHES[type_name], "Enabled")) == "Enabled":
            collected[type_name] = Item(type_name, now, collector(instance))
    inventory = store(account_id, region)
    with inventory.lock:
        inventory.items[instance.instance_id] = collected
    return sorted(collected)


def _step(context: Any, name: str, action: str, inputs: dict[str, Any]) -> StepResult:
    types = collect(context.account_id, context.region, context.instance, inputs)
    return StepResult(name, action, "Success", 0, f"Inventory collected: {', '.join(types)}.")


agent.STEP_HANDLERS["aws:softwareInventory"] = _step


# --- reading it ----------------------------------------------------------------------------------


def _split_key(key: str) -> tuple[str, str]:
    type_name, _, attribute = key.rpartition(".")
    if type_name not in SCHEMAS:
        raise ServiceError(
            "InvalidTypeNameException", f"The inventory type {type_name or key} isn't valid."
        )
    if attribute not in SCHEMAS[type_name]:
        raise ServiceError("InvalidFilter", f"{type_name} has no attribute {attribute}.")
    return type_name, attribute


def _compare(kind: str, actual: str, values: list[str]) -> bool:
    if kind == "Exists":
        return True
    if kind == "Equal":
        return actual in values
    if kind == "NotEqual":
        return actual not in values
    if kind == "BeginWith":
        return any(actual.startswith(v) for v in values)

    def number(text: str) -> float | str:
        try:
            return float(text)
        except ValueError:
            return text

    left = number(actual)
    for value in values:
        right = number(value)
        if type(left) is not type(right):
            continue
        if (kind == "LessThan" and left < right) or (kind == "GreaterThan" and left > right):  # type: ignore[operator]
            return True
    return False


def _item_matches(entry: dict[str, str], attribute: str, kind: str, values: list[str]) -> bool:
    return attribute in entry and _compare(kind, entry[attribute], values)


@operation("ssm", "GetInventory")
def get_inventory(call: Call) -> dict[str, Any]:
    params = call.params
    if params.get("Aggregators"):
        raise ServiceError(
            "InvalidAggregatorException", "The sandbox does not simulate inventory aggregators."
        )
    filters = [
        (*_split_key(f["Key"]), f.get("Type") or "Equal", list(f.get("Values") or []))
        for f in params.get("Filters") or []
    ]
    wanted = [a["TypeName"] for a in params.get("ResultAttributes") or []]
    for type_name in wanted:
        if type_name not in SCHEMAS:
            raise ServiceError(
                "InvalidResultAttributeException", f"{type_name} isn't an inventory type."
            )
    inventory = store(call.account_id, call.region)
    live = fleet_state(call.account_id, call.region).instances
    with inventory.lock:
        snapshot = {i: dict(types) for i, types in sorted(inventory.items.items()) if i in live}
    entities = []
    for instance_id, types in snapshot.items():
        if not all(
            any(_item_matches(e, attribute, kind, values) for e in types[type_name].content)
            if type_name in types
            else False
            for type_name, attribute, kind, values in filters
        ):
            continue
        shown = wanted or ["AWS:InstanceInformation"]
        entities.append(
            {
                "Id": instance_id,
                "Data": {t: types[t].to_json() for t in shown if t in types},
            }
        )
    page, token = ssm_documents.paginate(
        entities, params.get("MaxResults"), params.get("NextToken"), default=50
    )
    result: dict[str, Any] = {"Entities": page}
    if token:
        result["NextToken"] = token
    return result


@operation("ssm", "ListInventoryEntries")
def list_inventory_entries(call: Call) -> dict[str, Any]:
    params = call.params
    instance_id, type_name = params["InstanceId"], params["TypeName"]
    if instance_id not in fleet_state(call.account_id, call.region).instances:
        raise ServiceError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
    if type_name not in SCHEMAS:
        raise ServiceError(
            "InvalidTypeNameException", f"The inventory type {type_name} isn't valid."
        )
    conditions = []
    for item in params.get("Filters") or []:
        key = item["Key"]
        attribute = key.rpartition(".")[2] if key.startswith(type_name + ".") else key
        if attribute not in SCHEMAS[type_name]:
            raise ServiceError("InvalidFilter", f"{type_name} has no attribute {attribute}.")
        conditions.append((attribute, item.get("Type") or "Equal", list(item.get("Values") or [])))
    inventory = store(call.account_id, call.region)
    with inventory.lock:
        found = inventory.items.get(instance_id, {}).get(type_name)
    result: dict[str, Any] = {"TypeName": type_name, "InstanceId": instance_id, "Entries": []}
    if found is None:
        return result
    entries = [e for e in found.content if all(_item_matches(e, a, k, v) for a, k, v in conditions)]
    page, token = ssm_documents.paginate(
        entries, params.get("MaxResults"), params.get("NextToken"), default=50
    )
    shown = found.to_json()
    result.update(
        {
            "SchemaVersion": shown["SchemaVersion"],
            "CaptureTime": shown["CaptureTime"],
            "Entries": page,
        }
    )
    if token:
        result["NextToken"] = token
    return result


@operation("ssm", "GetInventorySchema")
def get_inventory_schema(call: Call) -> dict[str, Any]:
    params = call.params
    wanted = params.get("TypeName")
    if wanted is not None and wanted not in SCHEMAS:
        raise ServiceError("InvalidTypeNameException", f"The inventory type {wanted} isn't valid.")
    rows = [
        {
            "TypeName": type_name,
            "Version": SCHEMA_VERSION,
            "Attributes": [{"Name": n, "DataType": t} for n, t in attributes.items()],
            "DisplayName": type_name.split(":", 1)[1],
        }
        for type_name, attributes in sorted(SCHEMAS.items())
        if wanted is None or type_name == wanted
    ]
    page, token = ssm_documents.paginate(
        rows, params.get("MaxResults"), params.get("NextToken"), default=50
    )
    result: dict[str, Any] = {"Schemas": page}
    if token:
        result["NextToken"] = token
    return result
