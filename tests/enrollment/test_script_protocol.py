"""The WorkSpace's startup script and the endpoint speak one protocol, and the code stays in memory.

No PowerShell interpreter runs here, so the script is read as text: the request it builds (path,
method, content type, body fields), the answer fields it reads, the statuses it handles. Those are
compared with the endpoint's protocol module, and then sent to a live endpoint from a WorkSpace's
own address to show that what the script sends is accepted and what it reads is answered. The
sandbox's simulated WorkSpaces (which follow the script) are held to the same protocol.
A parse check of every ``.ps1`` in the repository is a separate test (syntax only).
"""

from __future__ import annotations

import http.client
import json
import re
from pathlib import Path

import pytest

from controller.service.enrollment import protocol
from fleet_sandbox import enrolling
from tests.enrollment.helpers import desired_state, endpoint, fleet, workspaces

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "workspaces" / "Enroll-WorkSpace.ps1"


def code_lines() -> list[str]:
    """The script without comments (``#`` to end of line, and ``<# ... #>`` blocks)."""
    text = re.sub(r"<#.*?#>", "", SCRIPT.read_text(encoding="utf-8"), flags=re.S)
    return [re.sub(r"(^|\s)#.*$", "", line).rstrip() for line in text.splitlines()]


def assigned(name: str) -> str:
    """The single-quoted string assigned to ``$name`` in the script."""
    found = [
        m.group(1) for line in code_lines() if (m := re.match(rf"\${name}\s*=\s*'([^']*)'", line))
    ]
    assert len(found) == 1, f"${name} is assigned {len(found)} times"
    return found[0]


class Request:
    """What the script sends, as read from it."""

    def __init__(self) -> None:
        text = "\n".join(code_lines())
        self.path = assigned("EnrollmentPath")
        self.method = assigned("EnrollmentMethod").upper()
        self.content_type = assigned("EnrollmentContentType")
        body = re.search(r"\$body\s*=\s*@\{([^}]*)\}\s*\|\s*ConvertTo-Json", text)
        assert body, "the request body is not built as a hashtable piped to ConvertTo-Json"
        self.fields = dict(re.findall(r"(\w+)\s*=\s*(\$[\w:]+)", body.group(1)))
        call = re.search(r"Invoke-RestMethod\b(.*?)(?:\n\s*\}|-TimeoutSec)", text, re.S)
        assert call, "the script does not call Invoke-RestMethod"
        self.call = call.group(1)
        self.reads = {
            field for field in re.findall(r"\$answer\.(\w+)", text, flags=re.I)
        }  # PowerShell names are case-insensitive: $answer and $Answer are one variable
        self.statuses = {int(s) for s in re.findall(r"\b(4\d\d|5\d\d)\b", text)}


def test_the_script_sends_what_the_endpoint_accepts_and_reads_what_it_answers():
    request = Request()
    assert request.path == protocol.PATH
    assert request.method == protocol.METHOD
    assert request.content_type == protocol.CONTENT_TYPE
    assert set(request.fields) == set(protocol.REQUEST_FIELDS)
    assert request.fields["computerName"] == "$env:COMPUTERNAME"
    for argument in (
        "-Method $EnrollmentMethod",
        "-Body $body",
        "-ContentType $EnrollmentContentType",
    ):
        assert argument in request.call
    assert "$uri = $Endpoint + $EnrollmentPath" in "\n".join(code_lines())
    assert request.reads <= set(protocol.RESPONSE_FIELDS), request.reads - set(
        protocol.RESPONSE_FIELDS
    )
    assert {"activationId", "activationCode", "region"} <= request.reads
    # Every status the endpoint answers with Retry-After is one the script waits on.
    retried = {status for status in protocol.RESULT_STATUS.values() if status in (429, 503)}
    assert retried <= request.statuses and 403 in request.statuses


def test_the_endpoint_only_listens_to_https_urls_in_the_script():
    params = "\n".join(code_lines())
    assert "[ValidatePattern('^https://[^/]+$')]" in params


def test_what_the_script_sends_gets_what_the_script_reads(sandbox, tmp_path):
    request = Request()
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired_state(tmp_path / "desired")) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        row = fleet(sandbox)[workspace_id]
        values = {"$env:COMPUTERNAME": row["computerName"]}
        body = json.dumps({field: values[source] for field, source in request.fields.items()})
        connection = http.client.HTTPConnection(
            "127.0.0.1", ep.server.port, timeout=30, source_address=(row["ipAddress"], 0)
        )
        connection.request(
            request.method, request.path, body=body, headers={"Content-Type": request.content_type}
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
        connection.close()
    assert response.status == 200
    assert request.reads <= set(answer)
    assert answer["workspaceId"] == workspace_id


def test_the_sandbox_workspaces_follow_the_same_protocol():
    assert enrolling.REQUEST_FIELD in protocol.REQUEST_FIELDS
    assert set(enrolling.ANSWER_FIELDS) <= set(protocol.RESPONSE_FIELDS)
    assert set(enrolling.ANSWER_FIELDS) <= Request().reads


def test_the_code_only_ever_reaches_the_installer_command_line():
    lines = code_lines()
    with_code = [line.strip() for line in lines if re.search(r"activationCode", line, re.I)]
    assert with_code == [
        '$arguments = @(\'/q\', "CODE=$($Answer.activationCode)", "ID=$($Answer.activationId)",'
        ' "REGION=$region")'
    ]
    uses = [line.strip() for line in lines if "$arguments" in line]
    assert uses[1:] == [
        "$process = Start-Process -FilePath $installer -ArgumentList $arguments -Wait -PassThru",
        "$arguments = $null",
    ]
    text = "\n".join(lines)
    for writer in ("Start-Transcript", "Out-File", "Set-Content", "Add-Content", "Tee-Object",
                   "Export-Clixml", "Export-Csv", "Write-Output", "Write-Host", "/log"):  # fmt: skip
        assert writer.lower() not in text.lower(), f"the script uses {writer}"
    # Event messages name the activation, never the answer as a whole.
    events = event_calls(lines)
    assert len(events) >= 10
    for call in events:
        assert not re.search(r"\$answer(?!\.(activationId|workspaceId|expiresAt)\b)", call, re.I)
        assert "$arguments" not in call and "$body" not in call


def event_calls(lines: list[str]) -> list[str]:
    """Each ``Write-EnrollmentEvent`` call with its continuation lines (a ``-Message (`` block)."""
    calls: list[str] = []
    depth = 0
    for line in lines:
        if depth == 0 and "Write-EnrollmentEvent -Name" in line:
            calls.append(line)
            depth = line.count("(") - line.count(")")
        elif depth > 0:
            calls[-1] += "\n" + line
            depth += line.count("(") - line.count(")")
    return calls


@pytest.mark.parametrize(
    "variable, documented",
    [
        (
            "AgentUrlFormat",
            "https://amazon-ssm-{0}.s3.{0}.amazonaws.com/latest/windows_amd64/AmazonSSMAgentSetup.exe",
        ),
        ("AgentService", "AmazonSSMAgent"),
    ],
)
def test_the_agent_facts_are_the_documented_ones(variable, documented):
    assert assigned(variable) == documented


def test_the_registration_is_checked_where_the_agent_writes_it():
    text = "\n".join(code_lines())
    assert "Join-Path $env:ProgramData 'Amazon\\SSM\\InstanceData\\registration'" in text
    assert "ManagedInstanceID -like 'mi-*'" in text
    assert "Get-AuthenticodeSignature -FilePath $installer" in text
    assert "$signature.Status -ne 'Valid'" in text
