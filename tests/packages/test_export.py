"""Export: owned packages and associations come back as manifests that validate (best effort)."""

from __future__ import annotations

import yaml

from controller.cli import main
from controller.manifests.specs.association import AssociationSpec
from controller.manifests.specs.package import PackageSpec
from tests.packages.helpers import (
    BUCKET,
    CONTROLLER_ID,
    association_yaml,
    controller,
    load,
    package_dir,
)


def test_export_gives_back_packages_and_associations(sandbox, tmp_path, capsys):
    root = tmp_path / "desired"
    package_dir(root, version="1.2.0", keep=4)
    (root / "a.yaml").write_text(
        association_yaml(
            "install-acme",
            schedule="schedule: {stagger: {group: apps, start: '07:30'}}",
            extra="maxConcurrency: '20%'",
        )
    )
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    _, result = controller(sandbox).reconcile(load(root))
    assert result.ok
    capsys.readouterr()
    code = main(
        [
            "export",
            "--endpoint-url",
            sandbox.endpoint,
            "--region",
            sandbox.region,
            "--controller-id",
            CONTROLLER_ID,
        ]
    )
    assert code == 0
    documents = {
        (d["kind"], d["metadata"]["name"]): d
        for d in yaml.safe_load_all(capsys.readouterr().out)
        if d
    }
    package = documents[("Package", "acme")]["spec"]
    assert PackageSpec.model_validate(package).version == "1.2.0"
    assert package["artifacts"] == {"bucket": BUCKET, "prefix": "distributor"}
    association = documents[("Association", "install-acme")]["spec"]
    spec = AssociationSpec.model_validate(association)
    assert spec.package is not None and spec.package.name == "Acme"
    assert spec.package.version == "latest"
    assert association["schedule"] == {"expression": "cron(30 7 ? * * *)"}
    assert association["maxConcurrency"] == "20%"
    assert association["targets"] == {"tags": {"App": ["Acme"]}}
