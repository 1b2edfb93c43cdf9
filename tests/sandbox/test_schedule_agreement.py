"""validate and the sandbox answer the same about every association schedule both tables know.

The controller's rules (controller/manifests/schedule.py) and the sandbox's (fleet_sandbox/
schedule.py) were written apart, from AWS's documentation, and share no code. Where they disagree,
a schedule either passes validate and fails at apply, or is refused offline although AWS would take
it; either way one of them is wrong about AWS, so a disagreement fails here until someone checks
the documentation and fixes the side that is wrong. Where AWS's documentation is silent, the two
were made to agree on purpose (each says so where it decides).
"""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from controller.manifests.schedule import schedule_problem
from tests.manifests.test_schedule import ACCEPTED as VALIDATE_ACCEPTED
from tests.sandbox._ssm_helpers import add_instance
from tests.sandbox.test_schedules import ACCEPTED as SANDBOX_ACCEPTED
from tests.sandbox.test_schedules import REFUSED as SANDBOX_REFUSED

EXPRESSIONS = sorted(
    set(VALIDATE_ACCEPTED)
    | {expression for expression, _ in SANDBOX_ACCEPTED}
    | {expression for expression, _ in SANDBOX_REFUSED}
)


def _sandbox_accepts(sandbox, expression: str) -> bool:
    ssm = sandbox.client("ssm", config=Config(retries={"total_max_attempts": 1}))
    try:
        ssm.create_association(
            Name="AWS-ConfigureAWSPackage",
            Parameters={"action": ["Install"], "name": ["Acme"]},
            Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
            ScheduleExpression=expression,
        )
    except ClientError as error:
        assert error.response["Error"]["Code"] == "InvalidSchedule", error
        return False
    return True


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_validate_and_the_sandbox_agree(sandbox, expression):
    add_instance(1, {"App": "Acme"})
    offline = schedule_problem(expression) is None
    online = _sandbox_accepts(sandbox, expression)
    assert offline == online, (
        f"{expression}: validate {'accepts' if offline else 'refuses'} it, the sandbox "
        f"{'accepts' if online else 'refuses'} it"
    )
