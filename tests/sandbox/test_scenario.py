"""The sandbox issue's scenario, through boto3 and the admin API only (no in-process shortcuts).

50 WorkSpaces boot and register with a published activation; the instances are tagged; a package is
installed by an association with the stock AWS-ConfigureAWSPackage on the tagged instances; one
instance's installer fails silently: every association status says Success while that instance's
agent model shows the application missing.
"""

from __future__ import annotations

import json

from tests.sandbox._ssm_helpers import APP_EXE, admin_get, publish_package

ACME_EFFECTS = {"files": [{"path": APP_EXE, "version": "1.0.0", "size": 2048}]}


def test_fifty_workspaces_register_and_a_silent_failure_still_reports_success(sandbox):
    ssm = sandbox.client("ssm")
    sandbox.admin.post(
        "scenario",
        {
            "workspaces": [{"count": 50, "tags": {"App": "Acme"}}],
            "registration": {"parameterName": "/fleet/activation"},
        },
    )
    activation = ssm.create_activation(IamRole="SSMServiceRole", RegistrationLimit=50)
    ssm.put_parameter(
        Name="/fleet/activation",
        Type="SecureString",
        Value=json.dumps(
            {
                "id": activation["ActivationId"],
                "code": activation["ActivationCode"],
                "region": "us-east-1",
                "expiry": "2030-01-01T00:00:00+00:00",
            }
        ),
    )
    results = sandbox.admin.post("fleet/boot", {})["results"]
    instances = sorted(r["instanceId"] for r in results if r.get("instanceId"))
    assert len(instances) == 50
    [described] = ssm.describe_activations()["ActivationList"]
    assert described["RegistrationsCount"] == 50

    for instance in instances:
        ssm.add_tags_to_resource(
            ResourceType="ManagedInstance",
            ResourceId=instance,
            Tags=[{"Key": "App", "Value": "Acme"}],
        )
    publish_package(sandbox, "Acme", "1.0.0")
    sandbox.admin.post("agent/effects", {"package": "Acme", "effects": ACME_EFFECTS})
    silent = instances[7]
    sandbox.admin.post(
        "agent/outcome", {"package": "Acme", "outcome": "silent", "instanceIds": [silent]}
    )
    association = ssm.create_association(
        Name="AWS-ConfigureAWSPackage",
        Parameters={"action": ["Install"], "name": ["Acme"]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
    )["AssociationDescription"]["AssociationId"]
    sandbox.admin.post("agent/run", {})

    overview = ssm.describe_association(AssociationId=association)["AssociationDescription"][
        "Overview"
    ]
    assert overview["AssociationStatusAggregatedCount"] == {"Success": 50}
    for instance in (silent, instances[0]):
        [status] = ssm.describe_instance_associations_status(InstanceId=instance)[
            "InstanceAssociationStatusInfos"
        ]
        assert status["Status"] == "Success"

    def installed_files(instance: str) -> set[str]:
        state = admin_get(sandbox, "agent/state", instanceId=instance)
        return {path.lower() for path in state["files"]}

    assert APP_EXE.lower() in installed_files(instances[0])
    assert APP_EXE.lower() not in installed_files(silent)  # "Success", yet nothing is installed
    assert admin_get(sandbox, "agent/state", instanceId=silent)["distributorPackages"] == {
        "Acme": "1.0.0"
    }
    assert sandbox.admin.get("shape-violations")["violations"] == []
