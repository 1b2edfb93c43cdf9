"""Fixtures of the service tests: a lease table in the sandbox's DynamoDB."""

from __future__ import annotations

import pytest

from controller.service.ha import LeaseTable
from tests.runtime.helpers import TABLE, api


@pytest.fixture
def table(sandbox) -> LeaseTable:
    sandbox.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "target", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "target", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return LeaseTable(api(sandbox.endpoint), TABLE)
