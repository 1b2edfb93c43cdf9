"""SSM documents as State Manager and Distributor see them.

moto stores documents but gets the parts the controller depends on wrong or leaves them out: Package
documents whose attachments must exist in S3, VersionName uniqueness, version numbers that never
come back after a delete, the 25-version limit of packages, ListDocumentVersions, attachment
information, and the Amazon-owned ``AWS-ConfigureAWSPackage``. So every document operation is
answered here from a store of our own (per account and region, on moto's SSM backend). Other
sandbox modules read documents through ``resolve`` and hear about new default versions through
``on_change``.

Decisions where the API reference is silent (documented in the sandbox's report):
- A Package document's manifest must be JSON with schemaVersion "2.0", ``packages`` and ``files``;
  every file the manifest lists must be reachable through the attachments (an object in moto's S3)
  and match its sha256; otherwise ``InvalidDocumentContent``. The manifest ``version`` must equal
  VersionName (VersionName defaults to it). Distributor copies attachments, so later S3 changes do
  not affect a created version.
- Version numbers grow monotonically: a deleted version's number is never reused.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from moto.core.resource_tagging import TaggedResource
from moto.ssm.models import SimpleSystemManagerBackend

from fleet_sandbox import scenario
from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.ssm_tags import check_tag_keys, tag_target
from fleet_sandbox.state import attached, ssm_backend
from fleet_sandbox.tagging import resource_source

AMAZON = "Amazon"
PACKAGE_VERSION_LIMIT = 25
DOCUMENT_VERSION_LIMIT = 1000
MAX_PACKAGE_FILES = 20
# "You can't use the following strings as document name prefixes ... aws amazon amzn AWSEC2
# AWSConfigRemediation AWSSupport" (CreateDocument's Name, botocore model); compared ignoring case.
_RESERVED_PREFIXES = ("aws", "amazon", "amzn", "awsec2", "awsconfigremediation", "awssupport")
MAX_CONTENT_BYTES = 64 * 1024  # "The content of the document must not exceed 64KB."
_NAME = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")
_ARN = re.compile(r"^arn:[^:]+:ssm:[^:]*:[^:]*:document/(.+)$")
_SCHEMAS = {
    "Command": {"1.2", "2.0", "2.2"},
    "Package": {"2.0"},
    "Automation": {"0.3"},
    "Session": {"1.0"},
    "Policy": {"2.0", "2.2"},
}
_PLATFORMS_BY_ACTION = {
    "aws:runPowerShellScript": {"Windows"},
    "aws:runShellScript": {"Linux", "MacOS"},
}
_ALL_PLATFORMS = ("Windows", "Linux", "MacOS")


@dataclass(frozen=True)
class Attachment:
    """A file attached to a document version, copied (by reference to its bytes' hash) at create."""

    name: str
    size: int
    sha256: str
    url: str


@dataclass
class DocumentVersion:
    number: int
    content: str
    document_format: str
    parsed: dict[str, Any]
    created: datetime
    version_name: str | None = None
    display_name: str | None = None
    target_type: str | None = None
    requires: list[dict[str, Any]] | None = None
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()

    @property
    def schema_version(self) -> str:
        return str(self.parsed.get("schemaVersion", ""))

    @property
    def description(self) -> str | None:
        value = self.parsed.get("description")
        return value if isinstance(value, str) else None

    def parameter_definitions(self) -> dict[str, dict[str, Any]]:
        params = self.parsed.get("parameters")
        return params if isinstance(params, dict) else {}


@dataclass
class StoredDocument:
    name: str
    document_type: str
    owner: str
    created: datetime
    versions: dict[int, DocumentVersion] = field(default_factory=dict)
    default_version: int = 1
    next_version: int = 1
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def latest_version(self) -> int:
        return max(self.versions)

    def version(self, number: int) -> DocumentVersion:
        return self.versions[number]

    def by_version_name(self, version_name: str) -> DocumentVersion | None:
        return next((v for v in self.versions.values() if v.version_name == version_name), None)


@dataclass
class DocumentStore:
    documents: dict[str, StoredDocument] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


def store(account_id: str, region: str) -> DocumentStore:
    return attached(ssm_backend(account_id, region), DocumentStore)


# --- change notification -------------------------------------------------------------------------

ChangeListener = Callable[[str, str, str, str], None]
"""(account_id, region, document name, event) with event default_changed | latest_changed | deleted."""

_listeners: list[ChangeListener] = []


def on_change(listener: ChangeListener) -> ChangeListener:
    _listeners.append(listener)
    return listener


def _notify(account_id: str, region: str, name: str, event: str) -> None:
    for listener in list(_listeners):
        listener(account_id, region, name, event)


# --- errors --------------------------------------------------------------------------------------


def _no_document() -> ServiceError:
    return ServiceError("InvalidDocument", "The specified document does not exist.")


def _bad_version() -> ServiceError:
    return ServiceError(
        "InvalidDocumentVersion", "The document version is not valid or does not exist."
    )


def _bad_content(detail: str) -> ServiceError:
    return ServiceError(
        "InvalidDocumentContent", f"The content for the document is not valid. {detail}"
    )


# --- lookups used by other sandbox modules ------------------------------------------------------


def document_name(name_or_arn: str) -> str:
    match = _ARN.match(name_or_arn)
    return match.group(1) if match else name_or_arn


def find(account_id: str, region: str, name_or_arn: str) -> StoredDocument | None:
    """A document of the account, or an Amazon-owned one, by name or ARN."""
    name = document_name(name_or_arn)
    own = store(account_id, region).documents.get(name)
    return own if own is not None else amazon_documents().get(name)


def get(account_id: str, region: str, name_or_arn: str) -> StoredDocument:
    document = find(account_id, region, name_or_arn)
    if document is None:
        raise _no_document()
    return document


def select_version(
    document: StoredDocument, version: str | None = None, version_name: str | None = None
) -> DocumentVersion:
    """The version a request names: number, $LATEST, $DEFAULT and/or VersionName (default if none)."""
    if version in (None, "", "$DEFAULT"):
        by_number = document.version(document.default_version)
    elif version == "$LATEST":
        by_number = document.version(document.latest_version)
    else:
        assert version is not None
        found = document.versions.get(int(version)) if version.isdigit() else None
        if found is None:
            raise _bad_version()
        by_number = found
    if not version_name:
        return by_number
    named = document.by_version_name(version_name)
    if named is None or (version not in (None, "") and named is not by_number):
        raise _bad_version()
    return named


def resolve(
    account_id: str, region: str, name_or_arn: str, version: str | None = None
) -> tuple[StoredDocument, DocumentVersion]:
    document = get(account_id, region, name_or_arn)
    return document, select_version(document, version)


# --- content ------------------------------------------------------------------------------------


def _parse_content(content: str, document_format: str, document_type: str) -> dict[str, Any]:
    try:
        if document_format == "JSON":
            parsed = json.loads(content)
        elif document_format == "YAML":
            parsed = yaml.safe_load(content)
        else:
            return {"schemaVersion": "1.0", "text": content}
    except (ValueError, yaml.YAMLError) as error:
        raise _bad_content(f"It is not valid {document_format}: {error}") from None
    if not isinstance(parsed, dict):
        raise _bad_content("The document must be an object.")
    schema = parsed.get("schemaVersion")
    if schema is None:
        raise _bad_content("schemaVersion is required.")
    allowed = _SCHEMAS.get(document_type)
    if allowed is not None and str(schema) not in allowed:
        raise ServiceError(
            "InvalidDocumentSchemaVersion",
            f"Document schema version, {schema}, is not supported for {document_type} documents.",
        )
    parameters = parsed.get("parameters", {})
    if parameters is not None and not isinstance(parameters, dict):
        raise _bad_content("parameters must be an object.")
    for pname, spec in (parameters or {}).items():
        if not isinstance(spec, dict) or "type" not in spec:
            raise _bad_content(f"Parameter {pname} needs a type.")
    if document_type == "Command":
        _check_command(parsed)
    if document_type == "Package":
        _check_manifest(parsed)
    return parsed


def _check_command(parsed: dict[str, Any]) -> None:
    if str(parsed["schemaVersion"]) == "1.2":
        if not isinstance(parsed.get("runtimeConfig"), dict):
            raise _bad_content("runtimeConfig is required for schema 1.2.")
        return
    steps = parsed.get("mainSteps")
    if not isinstance(steps, list) or not steps:
        raise _bad_content("mainSteps is required and must be a non-empty list.")
    names: set[str] = set()
    for step in steps:
        if not isinstance(step, dict) or not step.get("action") or not step.get("name"):
            raise _bad_content("Every step needs an action and a name.")
        if step["name"] in names:
            raise _bad_content(f"Step name {step['name']} is used twice.")
        names.add(step["name"])


def _check_manifest(parsed: dict[str, Any]) -> None:
    if not isinstance(parsed.get("version"), str) or not parsed["version"]:
        raise _bad_content("A package manifest needs a version.")
    if not isinstance(parsed.get("packages"), dict) or not parsed["packages"]:
        raise _bad_content("A package manifest needs packages.")
    files = parsed.get("files")
    if not isinstance(files, dict) or not files:
        raise _bad_content("A package manifest needs files.")
    if len(files) > MAX_PACKAGE_FILES:
        raise _bad_content(f"A package can have at most {MAX_PACKAGE_FILES} attachments.")
    for fname, spec in files.items():
        sha = (spec or {}).get("checksums", {}).get("sha256") if isinstance(spec, dict) else None
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            raise _bad_content(f"File {fname} needs a sha256 checksum.")


def platform_types(document_type: str, parsed: dict[str, Any]) -> list[str]:
    """The platforms a document runs on, as AWS derives them from its steps or packages."""
    found: set[str] = set()
    if document_type == "Package":
        for platform in parsed.get("packages") or {}:
            lowered = str(platform).lower()
            found.add(
                "Windows"
                if lowered == "windows"
                else "MacOS"
                if lowered in ("darwin", "macos")
                else "Linux"
            )
    else:
        steps = parsed.get("mainSteps") or [
            {"action": action} for action in (parsed.get("runtimeConfig") or {})
        ]
        for step in steps:
            action = step.get("action") if isinstance(step, dict) else None
            found |= _PLATFORMS_BY_ACTION.get(str(action), set(_ALL_PLATFORMS))
    return [p for p in _ALL_PLATFORMS if p in found]


def _render(version: DocumentVersion, document_format: str) -> str:
    if document_format == version.document_format:
        return version.content
    if document_format == "JSON":
        return json.dumps(version.parsed, indent=2)
    if document_format == "YAML":
        return yaml.safe_dump(version.parsed, sort_keys=False)
    raise ServiceError(
        "ValidationException", f"The document can't be returned as {document_format}."
    )


# --- attachments ---------------------------------------------------------------------------------


def _s3_object(account_id: str, region: str, bucket: str, key: str) -> bytes | None:
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    backend = s3_backends[account_id][get_partition(region)]
    try:
        found = backend.get_object(bucket, key)
    except MissingBucket:
        return None
    return bytes(found.value) if found is not None else None


def _s3_keys(account_id: str, region: str, bucket: str, prefix: str) -> list[str]:
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    backend = s3_backends[account_id][get_partition(region)]
    try:
        keys = backend.get_bucket(bucket).keys
    except MissingBucket:
        return []
    start = f"{prefix}/" if prefix else ""
    return sorted(k for k in keys if k.startswith(start) and "/" not in k[len(start) :])


def _split_s3_url(url: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/?(.*)$", url)
    if not match:
        raise ServiceError(
            "InvalidDocumentContent", f"The attachment location {url} is not an s3:// URL."
        )
    return match.group(1), match.group(2).strip("/")


def _attachment(name: str, data: bytes, url: str) -> Attachment:
    return Attachment(name, len(data), hashlib.sha256(data).hexdigest(), url)


def _collect_attachments(
    account_id: str,
    region: str,
    sources: list[dict[str, Any]] | None,
    wanted: list[str] | None,
) -> list[Attachment]:
    """The files the attachment sources provide; ``wanted`` names files that must be among them."""
    found: dict[str, Attachment] = {}
    for source in sources or []:
        key, values = source.get("Key"), source.get("Values") or []
        if not values:
            raise ServiceError("InvalidDocumentContent", "An attachment source needs one value.")
        value = values[0]
        if key == "SourceUrl":
            bucket, prefix = _split_s3_url(value)
            names = (
                wanted
                if wanted is not None
                else [k.rsplit("/", 1)[-1] for k in _s3_keys(account_id, region, bucket, prefix)]
            )
            for fname in names:
                object_key = f"{prefix}/{fname}" if prefix else fname
                data = _s3_object(account_id, region, bucket, object_key)
                if data is not None and fname not in found:
                    found[fname] = _attachment(fname, data, _url(bucket, object_key))
        elif key == "S3FileUrl":
            bucket, object_key = _split_s3_url(value)
            data = _s3_object(account_id, region, bucket, object_key)
            if data is None:
                raise ServiceError(
                    "InvalidDocumentContent", f"The attachment {value} does not exist."
                )
            fname = source.get("Name") or object_key.rsplit("/", 1)[-1]
            found[fname] = _attachment(fname, data, _url(bucket, object_key))
        elif key == "AttachmentReference":
            parts = value.split("/")
            if len(parts) != 3:
                raise ServiceError(
                    "InvalidDocumentContent",
                    f"The attachment reference {value} is not Document/Version/File.",
                )
            other = find(account_id, region, parts[0])
            version = other.versions.get(int(parts[1])) if other and parts[1].isdigit() else None
            match = next(
                (a for a in (version.attachments if version else []) if a.name == parts[2]), None
            )
            if match is None:
                raise ServiceError(
                    "InvalidDocumentContent", f"The attachment reference {value} does not exist."
                )
            found[source.get("Name") or match.name] = match
        else:
            raise ServiceError("InvalidDocumentContent", f"Unsupported attachment key {key}.")
    return list(found.values())


def _url(bucket: str, key: str) -> str:
    return f"https://{bucket}.s3.amazonaws.com/{key}"


def _package_attachments(
    account_id: str, region: str, parsed: dict[str, Any], sources: list[dict[str, Any]] | None
) -> list[Attachment]:
    files: dict[str, Any] = parsed["files"]
    attachments = {
        a.name: a for a in _collect_attachments(account_id, region, sources, list(files))
    }
    for fname, spec in files.items():
        attachment = attachments.get(fname)
        if attachment is None:
            where = (
                ", ".join(str((s.get("Values") or [""])[0]) for s in sources or [])
                or "no attachments"
            )
            raise _bad_content(f"The file {fname} listed in the manifest was not found in {where}.")
        expected = spec["checksums"]["sha256"].lower()
        if attachment.sha256 != expected:
            raise _bad_content(
                f"The sha256 of {fname} ({attachment.sha256}) does not match the manifest ({expected})."
            )
    return [attachments[fname] for fname in files]


def _version_from_request(
    call: Call, document_type: str, number: int, existing: StoredDocument | None
) -> DocumentVersion:
    params = call.params
    document_format = params.get("DocumentFormat") or "JSON"
    content = params["Content"]
    if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
        raise ServiceError(
            "MaxDocumentSizeExceeded",
            f"The content of the document must not exceed 64 KB ({MAX_CONTENT_BYTES} bytes).",
        )
    parsed = _parse_content(content, document_format, document_type)
    version_name = params.get("VersionName")
    if document_type == "Package":
        manifest_version = parsed["version"]
        if version_name is None:
            version_name = manifest_version
        elif version_name != manifest_version:
            raise _bad_content(
                f"The manifest version {manifest_version} does not match VersionName {version_name}."
            )
        attachments = _package_attachments(
            call.account_id, call.region, parsed, params.get("Attachments")
        )
    else:
        wanted = list(parsed["files"]) if isinstance(parsed.get("files"), dict) else None
        attachments = _collect_attachments(
            call.account_id, call.region, params.get("Attachments"), wanted
        )
    if version_name and existing is not None and existing.by_version_name(version_name) is not None:
        raise ServiceError(
            "DuplicateDocumentVersionName",
            "The version name has already been used in this document. Specify a different version "
            "name, and then try again.",
        )
    return DocumentVersion(
        number=number,
        content=content,
        document_format=document_format,
        parsed=parsed,
        created=clock.now(),
        version_name=version_name,
        # "If you don't specify a value for this parameter in your request, the existing value is
        # applied to the new document version." (UpdateDocument's DisplayName)
        display_name=params.get("DisplayName")
        or (existing.version(existing.latest_version).display_name if existing else None),
        target_type=params.get("TargetType"),
        requires=params.get("Requires"),
        attachments=attachments,
    )


# --- response shapes ----------------------------------------------------------------------------


def _parameters(version: DocumentVersion) -> list[dict[str, Any]]:
    out = []
    for pname, spec in version.parameter_definitions().items():
        item: dict[str, Any] = {"Name": pname, "Type": str(spec.get("type"))}
        if isinstance(spec.get("description"), str):
            item["Description"] = spec["description"]
        if "default" in spec and spec["default"] is not None:
            default = spec["default"]
            item["DefaultValue"] = default if isinstance(default, str) else json.dumps(default)
        out.append(item)
    return out


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def description(document: StoredDocument, version: DocumentVersion) -> dict[str, Any]:
    result: dict[str, Any] = {
        "Hash": version.hash,
        "HashType": "Sha256",
        "Name": document.name,
        "Owner": document.owner,
        "CreatedDate": version.created,
        "Status": "Active",
        "DocumentVersion": str(version.number),
        "Parameters": _parameters(version),
        "PlatformTypes": platform_types(document.document_type, version.parsed),
        "DocumentType": document.document_type,
        "SchemaVersion": version.schema_version,
        "LatestVersion": str(document.latest_version),
        "DefaultVersion": str(document.default_version),
        "DocumentFormat": version.document_format,
    }
    optional = {
        "Description": version.description,
        "VersionName": version.version_name,
        "DisplayName": version.display_name,
        "TargetType": version.target_type,
        "Requires": version.requires,
    }
    result.update({k: v for k, v in optional.items() if v})
    if document.tags:
        result["Tags"] = _tag_list(document.tags)
    if version.attachments:
        result["AttachmentsInformation"] = [{"Name": a.name} for a in version.attachments]
    return result


# --- handlers ------------------------------------------------------------------------------------


def _check_new_name(name: str) -> None:
    if name.lower().startswith(_RESERVED_PREFIXES):
        raise ServiceError(
            "ValidationException",
            f"Invalid document name {name}: the prefixes aws, amazon, amzn, AWSEC2, "
            "AWSConfigRemediation and AWSSupport are reserved by AWS.",
        )


@operation("ssm", "CreateDocument")
def create_document(call: Call) -> dict[str, Any]:
    params = call.params
    name = params["Name"]
    _check_new_name(name)
    document_type = params.get("DocumentType") or "Command"
    documents = store(call.account_id, call.region)
    with documents.lock:
        if find(call.account_id, call.region, name) is not None:
            raise ServiceError("DocumentAlreadyExists", "The specified document already exists.")
        version = _version_from_request(call, document_type, 1, None)
        tags = {tag["Key"]: tag["Value"] for tag in params.get("Tags") or []}
        check_tag_keys(list(tags))
        document = StoredDocument(
            name=name,
            document_type=document_type,
            owner=call.account_id,
            created=version.created,
            versions={1: version},
            default_version=1,
            next_version=2,
            tags=tags,
        )
        documents.documents[name] = document
        return {"DocumentDescription": description(document, version)}


@operation("ssm", "UpdateDocument")
def update_document(call: Call) -> dict[str, Any]:
    params = call.params
    documents = store(call.account_id, call.region)
    with documents.lock:
        name = document_name(params["Name"])
        document = documents.documents.get(name)
        if document is None:
            if name in amazon_documents():
                raise ServiceError(
                    "InvalidDocumentOperation", f"You can't update {name}: it is owned by Amazon."
                )
            raise _no_document()
        requested = params.get("DocumentVersion") or "$LATEST"
        if requested != "$LATEST" and requested != str(document.latest_version):
            raise ServiceError(
                "InvalidDocumentVersion",
                "The document version is not valid or does not exist. Only the latest version "
                f"({document.latest_version}) can be updated.",
            )
        limit = (
            PACKAGE_VERSION_LIMIT if document.document_type == "Package" else DOCUMENT_VERSION_LIMIT
        )
        if len(document.versions) >= limit:
            raise ServiceError(
                "DocumentVersionLimitExceeded",
                "The document has too many versions. Delete one or more document versions and try "
                f"again. (A {document.document_type} document can have at most {limit} versions.)",
            )
        version = _version_from_request(
            call, document.document_type, document.next_version, document
        )
        if any(v.content == version.content for v in document.versions.values()):
            raise ServiceError(
                "DuplicateDocumentContent",
                "The content of the association document matches another document. Change the "
                "content of the document and try again.",
            )
        document.versions[version.number] = version
        document.next_version += 1
        result = {"DocumentDescription": description(document, version)}
    _notify(call.account_id, call.region, name, "latest_changed")
    return result


@operation("ssm", "DescribeDocument")
def describe_document(call: Call) -> dict[str, Any]:
    params = call.params
    document = get(call.account_id, call.region, params["Name"])
    version = select_version(document, params.get("DocumentVersion"), params.get("VersionName"))
    return {"Document": description(document, version)}


@operation("ssm", "GetDocument")
def get_document(call: Call) -> dict[str, Any]:
    params = call.params
    document = get(call.account_id, call.region, params["Name"])
    version = select_version(document, params.get("DocumentVersion"), params.get("VersionName"))
    document_format = params.get("DocumentFormat") or version.document_format
    result: dict[str, Any] = {
        "Name": document.name,
        "CreatedDate": version.created,
        "DocumentVersion": str(version.number),
        "Status": "Active",
        "Content": _render(version, document_format),
        "DocumentType": document.document_type,
        "DocumentFormat": document_format,
    }
    optional = {
        "VersionName": version.version_name,
        "DisplayName": version.display_name,
        "Requires": version.requires,
    }
    result.update({k: v for k, v in optional.items() if v})
    if version.attachments:
        result["AttachmentsContent"] = [
            {"Name": a.name, "Size": a.size, "Hash": a.sha256, "HashType": "Sha256", "Url": a.url}
            for a in version.attachments
        ]
    return result


@operation("ssm", "DeleteDocument")
def delete_document(call: Call) -> None:
    params = call.params
    name = params["Name"]
    documents = store(call.account_id, call.region)
    with documents.lock:
        document = documents.documents.get(name)
        if document is None:
            if name in amazon_documents():
                raise ServiceError(
                    "InvalidDocumentOperation", f"You can't delete {name}: it is owned by Amazon."
                )
            raise _no_document()
        number, version_name = params.get("DocumentVersion"), params.get("VersionName")
        if not number and not version_name:
            del documents.documents[name]
            event = "deleted"
        else:
            try:
                version = select_version(document, number, version_name)
            except ServiceError:
                raise _no_document() from None
            if version.number == document.default_version:
                raise ServiceError(
                    "InvalidDocumentOperation",
                    "The default version of a document can't be deleted. Make another version the "
                    "default first, or delete the whole document.",
                )
            was_latest = version.number == document.latest_version
            del document.versions[version.number]
            event = "latest_changed" if was_latest else ""
    if event:
        _notify(call.account_id, call.region, name, event)


@operation("ssm", "UpdateDocumentDefaultVersion")
def update_document_default_version(call: Call) -> dict[str, Any]:
    params = call.params
    documents = store(call.account_id, call.region)
    with documents.lock:
        name = document_name(params["Name"])
        document = documents.documents.get(name)
        if document is None:
            raise _no_document()
        number = int(params["DocumentVersion"])
        if number not in document.versions:
            raise _bad_version()
        changed = document.default_version != number
        document.default_version = number
        version = document.version(number)
        result: dict[str, Any] = {"Name": name, "DefaultVersion": str(number)}
        if version.version_name:
            result["DefaultVersionName"] = version.version_name
    if changed:
        _notify(call.account_id, call.region, name, "default_changed")
    return {"Description": result}


@operation("ssm", "ListDocumentVersions")
def list_document_versions(call: Call) -> dict[str, Any]:
    params = call.params
    document = get(call.account_id, call.region, params["Name"])
    rows = [_version_info(document, version) for _, version in sorted(document.versions.items())]
    page, token = paginate(rows, params.get("MaxResults"), params.get("NextToken"), default=50)
    result: dict[str, Any] = {"DocumentVersions": page}
    if token:
        result["NextToken"] = token
    return result


def _version_info(document: StoredDocument, version: DocumentVersion) -> dict[str, Any]:
    info: dict[str, Any] = {
        "Name": document.name,
        "DocumentVersion": str(version.number),
        "CreatedDate": version.created,
        "IsDefaultVersion": version.number == document.default_version,
        "DocumentFormat": version.document_format,
        "Status": "Active",
    }
    if version.version_name:
        info["VersionName"] = version.version_name
    if version.display_name:
        info["DisplayName"] = version.display_name
    return info


@operation("ssm", "ListDocuments")
def list_documents(call: Call) -> dict[str, Any]:
    params = call.params
    filters: list[tuple[str, list[str]]] = [
        (f.get("Key", ""), list(f.get("Values") or [])) for f in params.get("Filters") or []
    ]
    filters += [(f["key"], [f["value"]]) for f in params.get("DocumentFilterList") or []]
    everything = list(amazon_documents().values()) + list(
        store(call.account_id, call.region).documents.values()
    )
    rows = [
        _identifier(document)
        for document in sorted(everything, key=lambda d: d.name)
        if all(_matches(call.account_id, document, key, values) for key, values in filters)
    ]
    page, token = paginate(rows, params.get("MaxResults"), params.get("NextToken"), default=50)
    result: dict[str, Any] = {"DocumentIdentifiers": page}
    if token:
        result["NextToken"] = token
    return result


def _matches(account_id: str, document: StoredDocument, key: str, values: list[str]) -> bool:
    version = document.version(document.default_version)
    if key == "Name":
        return any(document.name == v or document.name.startswith(v) for v in values)
    if key == "Owner":
        wanted = {v.lower() for v in values}
        if "all" in wanted:
            return True
        if document.owner == AMAZON:
            return bool(wanted & {"amazon", "public"})
        return bool(wanted & {"self", "private", account_id})
    if key == "DocumentType":
        return document.document_type in values
    if key == "PlatformTypes":
        return bool(set(values) & set(platform_types(document.document_type, version.parsed)))
    if key == "TargetType":
        return (version.target_type or "") in values
    if key == "SearchKeyword":
        return any(v.lower() in document.name.lower() for v in values)
    if key.startswith("tag:"):
        tag = document.tags.get(key[4:])
        return tag is not None and (not values or tag in values)
    if key == "tag-key":
        return any(v in document.tags for v in values)
    raise ServiceError("InvalidFilterKey", f"The filter key {key} is not valid.")


def _identifier(document: StoredDocument) -> dict[str, Any]:
    version = document.version(document.default_version)
    item: dict[str, Any] = {
        "Name": document.name,
        "CreatedDate": document.created,
        "Owner": document.owner,
        "PlatformTypes": platform_types(document.document_type, version.parsed),
        "DocumentVersion": str(version.number),
        "DocumentType": document.document_type,
        "SchemaVersion": version.schema_version,
        "DocumentFormat": version.document_format,
    }
    optional = {
        "VersionName": version.version_name,
        "DisplayName": version.display_name,
        "TargetType": version.target_type,
        "Requires": version.requires,
    }
    item.update({k: v for k, v in optional.items() if v})
    if document.tags:
        item["Tags"] = _tag_list(document.tags)
    return item


def paginate(
    rows: list[Any], max_results: int | None, next_token: str | None, default: int
) -> tuple[list[Any], str | None]:
    """One page of ``rows`` and the opaque token for the next (InvalidNextToken when it is bad)."""
    start = 0
    if next_token:
        try:
            start = int(
                base64.urlsafe_b64decode(next_token.encode()).decode().removeprefix("offset:")
            )
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise ServiceError("InvalidNextToken", "The specified token isn't valid.") from None
        if start < 0 or start > len(rows):
            raise ServiceError("InvalidNextToken", "The specified token isn't valid.")
    size = max_results or default
    end = start + size
    token = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(rows) else None
    return rows[start:end], token


@resource_source(SimpleSystemManagerBackend)
def _tagged_documents(backend: Any) -> Iterator[TaggedResource]:
    """The account's own documents join the tagging API as ``ssm:document`` (Amazon's do not)."""
    documents = attached(backend, DocumentStore)
    with documents.lock:
        owned = [(d.name, dict(d.tags)) for d in documents.documents.values()]
    for name, tags in owned:
        yield TaggedResource(
            arn=f"arn:aws:ssm:{backend.region_name}:{backend.account_id}:document/{name}",
            tags=tags,
            resource_type="ssm:document",
        )


@tag_target("Document")
def _document_tags(account_id: str, region: str, resource_id: str) -> dict[str, str]:
    document = store(account_id, region).documents.get(resource_id)
    if document is None:
        raise ServiceError(
            "InvalidResourceId",
            "The resource ID isn't valid. Verify that you entered the correct ID and try again.",
        )
    return document.tags


# --- Amazon-owned documents ---------------------------------------------------------------------

_CATALOGUE = Path(__file__).parent / "catalogue" / "amazon_documents.yaml"

_CONFIGURE_AWS_PACKAGE = {
    "schemaVersion": "2.2",
    "description": "Install or uninstall a Distributor package. You can install the latest version, "
    "default version, or a version of the package you specify.",
    "parameters": {
        "action": {
            "description": "(Required) Specify whether or not to install or uninstall the package.",
            "type": "String",
            "allowedValues": ["Install", "Uninstall"],
        },
        "installationType": {
            "description": "(Optional) Specify the type of installation.",
            "type": "String",
            "allowedValues": ["Uninstall and reinstall", "In-place update"],
            "default": "Uninstall and reinstall",
        },
        "name": {
            "description": "(Required) The package to install/uninstall.",
            "type": "String",
            "allowedPattern": r"^arn:[a-z0-9][-.a-z0-9]{0,62}:[a-z0-9][-.a-z0-9]{0,62}:([a-z0-9][-.a-z0-9]{0,62})?:([a-z0-9][-.a-z0-9]{0,62})?:(package|document)\/[a-zA-Z0-9/:.\-_]{1,128}$|^[a-zA-Z0-9/:.\-_]{1,128}$",
        },
        "version": {
            "description": "(Optional) The version of the package to install or uninstall. If you "
            "don't specify a version, the system installs the latest published version by default.",
            "type": "String",
            "default": "",
        },
        "additionalArguments": {
            "description": "(Optional) The additional parameters to provide to your install, "
            "uninstall, or update scripts.",
            "type": "String",
            "default": "{}",
        },
    },
    "mainSteps": [
        {
            "action": "aws:configurePackage",
            "name": "configurePackage",
            "inputs": {
                "name": "{{ name }}",
                "action": "{{ action }}",
                "installationType": "{{installationType}}",
                "version": "{{ version }}",
                "additionalArguments": "{{ additionalArguments }}",
            },
        }
    ],
}

_amazon: dict[str, StoredDocument] = {}
_amazon_lock = threading.Lock()


def _catalogue_content(entry: dict[str, Any]) -> dict[str, Any]:
    """A catalogue entry as a schema 2.2 Command document."""
    steps = []
    for step in entry["steps"]:
        built: dict[str, Any] = {
            "action": step["action"],
            "name": step["name"],
            "inputs": step.get("inputs") or {},
        }
        if step.get("platform"):
            built["precondition"] = {"StringEquals": ["platformType", step["platform"]]}
        steps.append(built)
    return {
        "schemaVersion": "2.2",
        "description": entry["description"],
        "parameters": entry.get("parameters") or {},
        "mainSteps": steps,
    }


def _amazon_document(name: str, content: dict[str, Any], created: datetime) -> StoredDocument:
    version = DocumentVersion(
        number=1,
        content=json.dumps(content, indent=2),
        document_format="JSON",
        parsed=copy.deepcopy(content),
        created=created,
    )
    return StoredDocument(
        name=name,
        document_type="Command",
        owner=AMAZON,
        created=created,
        versions={1: version},
        default_version=1,
        next_version=2,
    )


def amazon_documents() -> dict[str, StoredDocument]:
    """The Amazon-owned documents every account sees (read-only): the catalogue plus
    AWS-ConfigureAWSPackage."""
    with _amazon_lock:
        if not _amazon:
            _amazon["AWS-ConfigureAWSPackage"] = _amazon_document(
                "AWS-ConfigureAWSPackage",
                _CONFIGURE_AWS_PACKAGE,
                datetime(2018, 11, 14, tzinfo=UTC),
            )
            for entry in yaml.safe_load(_CATALOGUE.read_text(encoding="utf-8")):
                created = entry["created"]
                _amazon[entry["name"]] = _amazon_document(
                    entry["name"],
                    _catalogue_content(entry),
                    datetime(created.year, created.month, created.day, tzinfo=UTC),
                )
        return _amazon


def iter_documents(account_id: str, region: str) -> Iterable[StoredDocument]:
    yield from amazon_documents().values()
    yield from store(account_id, region).documents.values()


@scenario.section("buckets")
def _scenario_buckets(section: Any, account_id: str, region: str) -> None:
    """``buckets: [name, ...]``: S3 buckets that exist from the start (e.g. for package artifacts)."""
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    if not isinstance(section, list) or not all(isinstance(b, str) for b in section):
        raise ValueError("'buckets' is a list of bucket names")
    backend = s3_backends[account_id][get_partition(region)]
    for bucket in section:
        if bucket not in backend.buckets:
            backend.create_bucket(bucket, region)
