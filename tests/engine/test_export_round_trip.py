"""export -> validate -> plan on a populated sandbox: adopting a fleet from what is live.

The exported manifests validate as written; each package's files are read back from its zips
(so it builds the very same zip: plan changes no package), its detection rule comes back from the
association that installs it, and the associations and the activation come back equal. What
export cannot know is a REPLACE-ME placeholder: validate lists it with file and line, plan
refuses the manifest holding it (and blocks what references it), and the report on stderr says
what to review.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from controller.cli import main
from tests.engine.helpers import EXAMPLE, boot, cli, make_fleet


def _populated(sandbox, tmp_path: Path) -> Path:
    desired = tmp_path / "desired"
    shutil.copytree(EXAMPLE, desired)
    (desired / "enrollment.yaml").unlink()  # WorkSpaces register with the shared activation
    sandbox.client("s3").create_bucket(Bucket="fleet-controller-packages-example")
    make_fleet(sandbox, finance=3, engineering=2)
    assert cli(sandbox, "apply", str(desired)) == 0
    boot(sandbox)
    assert cli(sandbox, "apply", str(desired)) == 0
    return desired


def _plan(sandbox, directory: Path, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli(sandbox, "plan", str(directory), "--format", "json")
    return code, json.loads(capsys.readouterr().out)


def test_exported_manifests_validate_and_plan_changes_no_package_association_or_activation(
    sandbox, tmp_path, capsys
):
    _populated(sandbox, tmp_path)
    out = tmp_path / "adopted"
    capsys.readouterr()
    assert cli(sandbox, "export", "--output", str(out)) == 0
    report = capsys.readouterr().err
    assert "Exported 1 Activation, 3 Package, 2 TagSync, 3 Association" in report
    assert "Review before applying:" in report and "TagSync" in report
    assert "placeholder" not in report  # everything could be read back
    # Every association's schedule is flattened, and the report says so of each (it named the
    # first one only, as if the others kept their stagger group).
    [schedules] = [line for line in report.splitlines() if "stagger group" in line]
    for name in ("install-acme-viewer", "install-contoso-notes", "install-fabrikam-agent"):
        assert name in schedules, schedules

    assert main(["validate", str(out)]) == 0
    said = capsys.readouterr().out
    assert "valid (1 Activation, 3 Package, 2 TagSync, 3 Association)" in said
    assert "placeholder" not in said
    assert sorted(p.name for p in (out / "packages" / "acme-viewer").iterdir()) == [
        "AcmeViewer.msi",
        "install.ps1",
        "uninstall.ps1",
    ]
    assert (out / "packages/acme-viewer/install.ps1").read_bytes() == (
        EXAMPLE / "packages/acme-viewer/install.ps1"
    ).read_bytes()

    code, plan = _plan(sandbox, out, capsys)
    assert code == 0, plan
    # Only TagSync may differ (renames and attributes are not read back); nothing else changes.
    assert {op["kind"] for op in plan["operations"]} <= {"TagSync"}, plan["operations"]
    assert plan["summary"]["refused"] == 0


def test_what_export_cannot_know_is_a_placeholder_validate_locates_and_plan_refuses(
    sandbox, tmp_path, capsys
):
    _populated(sandbox, tmp_path)
    ssm = sandbox.client("ssm")
    for association in ssm.list_associations()["Associations"]:
        if association["AssociationName"] == "install-acme-viewer":  # its detection rule goes
            ssm.delete_association(AssociationId=association["AssociationId"])
    out = tmp_path / "adopted" / "fleet.yaml"
    capsys.readouterr()
    assert cli(sandbox, "export", "--output", str(out)) == 0
    report = capsys.readouterr().err
    assert "1 REPLACE-ME placeholder(s)" in report and "Package/acme-viewer" in report

    assert main(["validate", str(out.parent)]) == 0
    said = capsys.readouterr().out
    [line] = [line for line in said.splitlines() if "REPLACE-ME" in line]
    path, number = line.strip().split(":")[:2]
    assert path == str(out) and "Package/acme-viewer: spec.detection.path:" in line
    assert "REPLACE-ME" in out.read_text().splitlines()[int(number) - 1]  # the very line

    documents = list(yaml.safe_load_all(out.read_text()))
    assert sorted(d["metadata"]["name"] for d in documents if d["kind"] == "Association") == [
        "install-contoso-notes",
        "install-fabrikam-agent",
    ]
    # Refer to the placeholder package again: plan refuses it, and what references it is blocked.
    with out.open("a") as manifests:
        manifests.write(
            "---\napiVersion: fleet-controller/v1alpha1\nkind: Association\n"
            "metadata: {name: install-acme-viewer}\n"
            "spec: {package: {name: acme-viewer}, targets: {tags: {LineOfBusiness: [finance]}},"
            " schedule: {expression: 'cron(0 8 ? * * *)'}}\n"
        )
    code, plan = _plan(sandbox, out.parent, capsys)
    assert code == 1
    [refusal] = [f for f in plan["findings"] if f["severity"] == "error"]
    assert (refusal["kind"], refusal["name"]) == ("Package", "acme-viewer")
    assert "placeholder" in refusal["message"] and str(out) in refusal["message"]
    assert not [op for op in plan["operations"] if op["name"] == "acme-viewer"]
    assert [b["name"] for b in plan["blocked"]] == ["install-acme-viewer"]


def test_placeholders_filled_in_as_they_say_leave_plan_with_no_package_change(
    sandbox, tmp_path, capsys
):
    """The whole adoption when the packages' zips cannot be read back (S3 denies GetObject
    while export runs): each Package's publisher is a placeholder saying what to do, validate
    lists each with file and line, and once the files are put back and listed as it says,
    plan changes no package, association or activation (the build is the live one, byte for
    byte)."""
    _populated(sandbox, tmp_path)
    sandbox.admin.set_faults([{"service": "s3", "operation": "GetObject", "deny_rate": 1.0}])
    out = tmp_path / "adopted"
    capsys.readouterr()
    try:
        assert cli(sandbox, "export", "--output", str(out)) == 0
    finally:
        sandbox.admin.set_faults([])
    assert "3 REPLACE-ME placeholder(s)" in capsys.readouterr().err

    assert main(["validate", str(out)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if "REPLACE-ME" in line]
    manifest = out / "fleet.yaml"
    lines = manifest.read_text().splitlines()
    assert len(listed) == 3
    for line in listed:
        path, number = line.strip().split(":")[:2]
        assert path == str(manifest) and ": spec.publisher: " in line, line
        assert "REPLACE-ME" in lines[int(number) - 1] and "publisher:" in lines[int(number) - 1]
    code, plan = _plan(sandbox, out, capsys)
    assert code == 1 and plan["summary"]["refused"] == 3  # refused until filled in

    # Fill them in as the placeholder says: the files in packages/<name>/, listed, a publisher.
    documents = list(yaml.safe_load_all(manifest.read_text()))
    for document in documents:
        if document["kind"] != "Package":
            continue
        name = document["metadata"]["name"]
        assert "list them in platforms[].files" in document["spec"]["publisher"]
        [original] = yaml.safe_load_all((EXAMPLE / "packages" / name / "package.yaml").read_text())
        files = original["spec"]["platforms"][0]["files"]
        for file in files:
            shutil.copyfile(EXAMPLE / "packages" / name / file, out / "packages" / name / file)
        document["spec"]["platforms"][0]["files"] = [f"packages/{name}/{f}" for f in files]
        document["spec"]["publisher"] = original["spec"]["publisher"]
    manifest.write_text(yaml.safe_dump_all(documents, sort_keys=False))

    assert main(["validate", str(out)]) == 0
    assert "REPLACE-ME" not in capsys.readouterr().out
    code, plan = _plan(sandbox, out, capsys)
    assert code == 0, plan
    assert {op["kind"] for op in plan["operations"]} <= {"TagSync"}, plan["operations"]
    assert plan["summary"]["refused"] == 0
