"""The enrollment endpoint over real HTTP, in front of the sandbox: who gets an activation, and what.

Every WorkSpace asks from its own loopback address (the sandbox binds it), exactly as the startup
script asks from the WorkSpace; refusals are asked by hand from chosen addresses.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
from structlog.testing import capture_logs

from controller.contract.ownership import MANIFEST_TAG, OWNER_TAG, WORKSPACE_ID_TAG
from controller.service.enrollment.admission import AdmissionSettings
from tests.enrollment.helpers import (
    CONTROLLER_ID,
    DIRECTORY,
    OTHER_DIRECTORY,
    TAGSYNC_TAGS,
    activations,
    desired_state,
    endpoint,
    enroll,
    fleet,
    tags,
    workspaces,
)


@pytest.fixture
def desired(tmp_path):
    return desired_state(tmp_path / "desired")


def test_a_workspace_gets_an_activation_made_for_it_and_registers_already_tagged(sandbox, desired):
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        me = fleet(sandbox)[workspace_id]
        assert me["ipAddress"].startswith("127.")  # its own loopback address

        (asked,) = enroll(sandbox, [workspace_id], register=False)
        assert asked["httpStatus"] == 200
        (activation,) = activations(sandbox)
        assert activation["RegistrationLimit"] == 1
        assert activation["DefaultInstanceName"] == me["computerName"]
        # On AWS's clock, as the controller reads it from Date headers (to about a second).
        lifetime = activation["ExpirationDate"] - activation["CreatedDate"]
        assert timedelta(minutes=58) < lifetime <= timedelta(hours=1, seconds=2)
        wanted = {
            **TAGSYNC_TAGS,
            "Fleet": "workspaces",
            OWNER_TAG: CONTROLLER_ID,
            MANIFEST_TAG: "Enrollment/office",
            WORKSPACE_ID_TAG: workspace_id,
        }
        assert tags(activation["Tags"]) == wanted
        assert ep.counted("issued") == 1 and ep.wakes == ["default"]

        (registered,) = enroll(sandbox, [workspace_id])
        assert registered["status"] == "registered"
        instance = registered["instanceId"]
        ssm = sandbox.client("ssm")
        listed = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance)
        assert tags(listed["TagList"]) == wanted  # AWS copied the activation's tags
        assert ep.counted("reused") == 1  # the second ask got the same, still unused activation
        assert sandbox.admin.call_counts("ssm")["CreateActivation"] == 1


def test_asking_again_returns_the_same_unused_activation_and_never_piles_up(sandbox, desired):
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        address, name = (
            fleet(sandbox)[workspace_id]["ipAddress"],
            fleet(sandbox)[workspace_id]["computerName"],
        )
        answers = [ep.ask(address, name) for _ in range(3)]
        assert [status for status, _, _ in answers] == [200, 200, 200]
        assert len({body["activationId"] for _, body, _ in answers}) == 1
        assert len({body["activationCode"] for _, body, _ in answers}) == 1
        assert len(activations(sandbox)) == 1
        assert (ep.counted("issued"), ep.counted("reused")) == (1, 2)
        first = answers[0][1]["activationId"]

    # A restarted controller holds no code: the WorkSpace's unused activation is replaced.
    with endpoint(sandbox, desired) as restarted:
        status, body, _ = restarted.ask(address, name)
        assert status == 200 and body["activationId"] != first
        assert [a["ActivationId"] for a in activations(sandbox)] == [body["activationId"]]


def test_concurrent_asks_of_one_workspace_get_one_activation(sandbox, desired):
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        row = fleet(sandbox)[workspace_id]
        results: list[int] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(ep.ask(row["ipAddress"], row["computerName"])[0])
            )
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200] * 8
        assert len(activations(sandbox)) == 1
        assert sandbox.admin.call_counts("ssm")["CreateActivation"] == 1


def test_each_refusal_creates_nothing_and_is_counted_and_logged(sandbox, desired):
    mine, other, doomed = workspaces(sandbox, 3)
    (outsider,) = workspaces(sandbox, 1, directory=OTHER_DIRECTORY)
    limits = AdmissionSettings(
        per_source_rate=0.01, per_source_burst=3, total_rate=1000, total_burst=1000
    )
    with endpoint(sandbox, desired, admission=limits) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        rows = fleet(sandbox)
        sandbox.admin.post("fleet/terminate", {"workspaceIds": [doomed]})
        sandbox.admin.reset_calls()
        with capture_logs() as logged:
            # an address that is no WorkSpace
            assert ep.ask("127.250.0.9", rows[mine]["computerName"])[0] == 403
            # a WorkSpace claiming another's name
            assert ep.ask(rows[mine]["ipAddress"], rows[other]["computerName"])[0] == 403
            # a terminated WorkSpace
            assert ep.ask(rows[doomed]["ipAddress"], rows[doomed]["computerName"])[0] == 403
            # a WorkSpace of a directory no Enrollment names
            assert ep.ask(rows[outsider]["ipAddress"], rows[outsider]["computerName"])[0] == 403
            # a flood from one address: its burst is answered (refused), then 429 with Retry-After
            flood = [ep.ask("127.250.0.10", "WSAMZN-FLOOD001") for _ in range(20)]
        assert [status for status, _, _ in flood[:3]] == [403] * 3
        assert {status for status, _, _ in flood[3:]} == {429}
        assert all(int(headers["Retry-After"]) >= 1 for _, _, headers in flood[3:])
        assert all(body == {"result": "refused"} for status, body, _ in flood[:3])

        assert activations(sandbox) == []
        assert sandbox.admin.call_counts("ssm")["CreateActivation"] == 0
        assert ep.counted("refused_no_workspace") == 1 + 1 + 3  # unknown, outsider, flood burst
        assert ep.counted("refused_name_mismatch") == 1
        assert ep.counted("refused_not_available") + ep.counted("refused_no_workspace") == 6
        assert ep.counted("refused_not_available") == 1
        assert ep.counted("rate_limited_source") == 17
        assert ep.counted("issued") == 0 and ep.wakes == []
        decisions = [e for e in logged if e["event"] == "enrollment"]
        assert [e["result"] for e in decisions[:4]] == [
            "refused_no_workspace",
            "refused_name_mismatch",
            "refused_not_available",
            "refused_no_workspace",
        ]
        assert (
            decisions[1]["workspace_id"] == mine
            and decisions[1]["expected"] == rows[mine]["computerName"]
        )
        # The flood is logged once (then counted), not seventeen times.
        limited = [e for e in decisions if e["result"] == "rate_limited_source"]
        assert len(limited) == 1 and limited[0]["source"] == "127.250.0.10"


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(sandbox, desired):
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired, trusted_proxies=("127.0.0.2/32",)) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        row = fleet(sandbox)[workspace_id]
        forwarded = {"X-Forwarded-For": f"203.0.113.7, {row['ipAddress']}"}
        # From anyone else, the header is ignored: the peer is no WorkSpace.
        assert ep.ask("127.0.0.3", row["computerName"], headers=forwarded)[0] == 403
        # From the proxy, the rightmost address not a proxy is the client.
        status, body, _ = ep.ask("127.0.0.2", row["computerName"], headers=forwarded)
        assert status == 200 and body["workspaceId"] == workspace_id
        # A client writing the WorkSpace's address itself gets nowhere: the proxy appends.
        spoofed = {"X-Forwarded-For": f"{row['ipAddress']}, 198.51.100.4"}
        assert ep.ask("127.0.0.2", row["computerName"], headers=spoofed)[0] == 403
        assert (
            ep.ask("127.0.0.2", row["computerName"], headers={"X-Forwarded-For": "garbage"})[0]
            == 400
        )


def test_a_workspace_inside_a_trusted_proxy_range_cannot_speak_for_another(sandbox, desired):
    """An operator who gives --enroll-trusted-proxy the whole subnet the load balancer shares
    with WorkSpaces makes every WorkSpace in it a "proxy" whose X-Forwarded-For is believed.
    A WorkSpace is never a proxy: whether it connects directly or through the real proxy, the
    address it writes into the header must not make it another WorkSpace."""
    attacker, victim = workspaces(sandbox, 2)
    proxy = "127.127.255.254"  # the load balancer, in the same (trusted) range, no WorkSpace
    with endpoint(sandbox, desired, trusted_proxies=("127.64.0.0/10",)) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        rows = fleet(sandbox)
        me, them = rows[attacker], rows[victim]
        assert me["ipAddress"].startswith("127.") and them["ipAddress"] != me["ipAddress"]
        # Directly, writing the victim's address into the header itself.
        direct = {"X-Forwarded-For": them["ipAddress"]}
        assert ep.ask(me["ipAddress"], them["computerName"], headers=direct)[0] == 403
        # Through the proxy, which appends the attacker's real address.
        relayed = {"X-Forwarded-For": f"{them['ipAddress']}, {me['ipAddress']}"}
        assert ep.ask(proxy, them["computerName"], headers=relayed)[0] == 403
        assert activations(sandbox) == []
        assert ep.counted("refused_name_mismatch") == 2
        # A WorkSpace in that range still enrolls as itself, through the proxy.
        mine = {"X-Forwarded-For": me["ipAddress"]}
        status, body, _ = ep.ask(proxy, me["computerName"], headers=mine)
        assert status == 200 and body["workspaceId"] == attacker


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"computerName": "WSAMZN-A", "extra": 1}',
        b'{"computerName": "bad name with spaces"}',
        b'{"computerName": 42}',
        b"{}",
        b'{"computerName": "' + b"A" * 2000 + b'"}',
    ],
)
def test_a_request_that_is_not_exactly_the_protocol_is_a_bad_request(sandbox, desired, body):
    with endpoint(sandbox, desired) as ep:
        status, answer, _ = ep.ask("127.0.0.1", body=body)
        assert (status, answer) == (400, {"result": "bad_request"})
        assert ep.counted("bad_request") == 1
        assert sandbox.admin.call_counts("ssm")["CreateActivation"] == 0


def test_not_configured_or_not_the_lease_holder_is_unavailable_not_refused(sandbox, desired):
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, lambda: None) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        row = fleet(sandbox)[workspace_id]
        status, _, headers = ep.ask(row["ipAddress"], row["computerName"])
        assert status == 503 and int(headers["Retry-After"]) > 0
    with endpoint(sandbox, desired, may_write=lambda: False) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        row = fleet(sandbox)[workspace_id]
        assert ep.ask(row["ipAddress"], row["computerName"])[0] == 503
        assert ep.counted("unavailable") == 1
        # ... and the load balancer's health check sends asks elsewhere.
        assert health(ep) == 503
    assert activations(sandbox) == []


def health(ep) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", ep.server.port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_the_listener_serves_only_its_path_and_a_health_check(sandbox, desired):
    import http.client

    with endpoint(sandbox, desired) as ep:
        connection = http.client.HTTPConnection("127.0.0.1", ep.server.port, timeout=10)
        for method, path, expected in [
            ("GET", "/healthz", 200),
            ("GET", "/metrics", 404),
            ("POST", "/webhook", 404),
            ("GET", "/v1/enroll", 404),
        ]:
            connection.request(method, path)
            response = connection.getresponse()
            response.read()
            assert response.status == expected, (method, path)
        connection.close()


def test_the_answer_and_its_code_never_reach_the_log(sandbox, desired):
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired) as ep, capture_logs() as logged:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        row = fleet(sandbox)[workspace_id]
        status, body, _ = ep.ask(row["ipAddress"], row["computerName"])
    assert status == 200
    code = body["activationCode"]
    assert code not in json.dumps(logged, default=str)
    (decision,) = [e for e in logged if e["event"] == "enrollment"]
    assert decision["activation_id"] == body["activationId"] and decision["result"] == "issued"
    assert code not in repr(ep.service.targets["default"].issuer.vault.get(workspace_id))


def test_with_a_certificate_the_listener_speaks_https_only(sandbox, desired, tmp_path):
    import http.client
    import shutil
    import ssl
    import subprocess

    from controller.service.enrollment.server import tls_context

    openssl = shutil.which("openssl")
    assert openssl, "openssl (Debian's openssl package) is needed to make a test certificate"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=enroll.test",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired, tls=tls_context(cert, key)) as ep:
        assert ep.url.startswith("https://")
        sandbox.admin.post("fleet/enrollment", {"url": ep.url, "caFile": str(cert)})
        (result,) = enroll(sandbox, [workspace_id])
        assert result["status"] == "registered"
        # Plain HTTP to the TLS port gets no answer; a client that does not trust the
        # certificate never sends its request.
        plain = http.client.HTTPConnection("127.0.0.1", ep.server.port, timeout=10)
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            plain.request("POST", "/v1/enroll", body=b"{}")
            plain.getresponse()
        row = fleet(sandbox)[workspace_id]
        with pytest.raises(ssl.SSLCertVerificationError):
            ep.ask(row["ipAddress"], row["computerName"], context=ssl.create_default_context())
        assert ep.counted("issued") == 1 and ep.counted("bad_request") == 0


def test_a_certificate_without_its_key_is_refused_at_start(tmp_path):
    from controller.service.enrollment.endpoint import EndpointSettings

    with pytest.raises(ValueError, match="go together"):
        EndpointSettings(tls_cert=tmp_path / "cert.pem")


def test_a_crowd_of_idle_connections_is_closed_at_the_door(sandbox, desired):
    """Each open connection holds a thread; beyond the bound, a new one is closed at once."""
    import contextlib
    import http.client
    import socket
    import time

    with endpoint(sandbox, desired, max_connections=2) as ep:
        idle = [
            socket.create_connection(("127.0.0.1", ep.server.port), timeout=10) for _ in range(2)
        ]
        # One accept loop takes them in order: the third finds both places taken.
        extra = socket.create_connection(("127.0.0.1", ep.server.port), timeout=10)
        with contextlib.suppress(ConnectionResetError):
            assert extra.recv(1) == b""  # closed without an answer
        extra.close()
        for connection in idle:
            connection.close()
        deadline = time.monotonic() + 10
        while True:  # the idle ones' threads end at EOF and free their places
            with contextlib.suppress(ConnectionError, http.client.HTTPException):
                if health(ep) == 200:
                    break
            assert time.monotonic() < deadline, "the bound never freed"
            time.sleep(0.05)


def test_clients_trickling_their_requests_cannot_hold_the_listener(sandbox, desired):
    """Slowloris from the WorkSpaces' subnets: every connection place taken by a client sending
    one byte every 0.2 s. Each must be cut off at the request timeout (1 s), so a WorkSpace
    asking meanwhile gets its answer within a bounded wait instead of a listener held for ever."""
    import contextlib
    import http.client
    import time

    from tests.observability.helpers import trickle

    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired, max_connections=2, request_timeout=1.0) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        row = fleet(sandbox)[workspace_id]
        payload = (
            b'POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{"c' + b"a" * 80
        )
        cut: list[int | None] = []
        slow = [
            threading.Thread(target=lambda: cut.append(trickle(ep.server.port, payload, 0.2)))
            for _ in range(2)
        ]
        for thread in slow:
            thread.start()
        deadline = time.monotonic() + 12  # the trickle lasts 25 s
        status = None
        while status != 200:
            assert time.monotonic() < deadline, "the slow clients held the listener"
            with contextlib.suppress(ConnectionError, http.client.HTTPException, OSError):
                status = ep.ask(row["ipAddress"], row["computerName"])[0]
        for thread in slow:
            thread.join(timeout=30)
        assert len(cut) == 2 and all(sent is not None for sent in cut), cut
        assert ep.counted("issued") == 1


def test_a_failure_inside_the_decision_is_answered_500_and_logged_not_a_dropped_connection(
    sandbox,
):
    """A bug (here: the desired state cannot be read) must not kill the request thread with a
    raw traceback on stderr and a reset for the WorkSpace: the answer is 500 ``error``,
    counted, and the failure goes to the structured log (where redaction applies)."""

    def broken() -> None:
        raise RuntimeError("the desired state is unreadable")

    with endpoint(sandbox, broken) as ep, capture_logs() as logged:
        status, body, _ = ep.ask("127.0.0.1", "WSAMZN-ANY")
    assert (status, body) == (500, {"result": "error"})
    assert ep.counted("error") == 1
    (decision,) = [e for e in logged if e["event"] == "enrollment"]
    assert decision["result"] == "error" and "unreadable" in decision["reason"]


@pytest.mark.parametrize("skew", [240, -240])
def test_an_activation_lives_its_valid_for_on_aws_clock_whatever_the_hosts(sandbox, tmp_path, skew):
    """AWS's clock 4 minutes ahead of (or behind) the controller's host, as SigV4 tolerates:
    the activation must still expire validFor (15 minutes here) after its creation in AWS's
    time, and the WorkSpace is told that same expiry. From the host's clock, AWS 4 minutes
    ahead left the WorkSpace 11 minutes to install the agent and register."""
    sandbox.admin.skew_clock(skew)
    desired = desired_state(tmp_path / "desired", valid_for="15m")
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        row = fleet(sandbox)[workspace_id]
        status, body, _ = ep.ask(row["ipAddress"], row["computerName"])
        assert status == 200
    (activation,) = activations(sandbox)
    lifetime = activation["ExpirationDate"] - activation["CreatedDate"]
    assert timedelta(minutes=14) < lifetime <= timedelta(minutes=15, seconds=5), lifetime
    told = datetime.fromisoformat(body["expiresAt"])
    assert abs(told - activation["ExpirationDate"]) < timedelta(seconds=5)


def test_the_code_is_registered_with_redaction_before_anyone_could_print_it(sandbox, desired):
    """README, Secrets: every code is registered with the redaction layer; a per-WorkSpace one
    from the moment the endpoint created it (so an exception or log line holding it is redacted,
    whatever path it takes)."""
    from controller.observability.redaction import REDACTED, redact_text

    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        row = fleet(sandbox)[workspace_id]
        status, body, _ = ep.ask(row["ipAddress"], row["computerName"])
    assert status == 200
    code = body["activationCode"]
    assert code in sandbox.admin.get("issued-codes")["codes"]  # a code AWS really issued
    assert redact_text(f"error: code={code}; retry") == f"error: code={REDACTED}; retry"


def test_an_address_two_targets_workspaces_share_proves_nobody(sandbox, desired):
    """Two targets (here two Regions, in production two accounts' VPCs) can hold WorkSpaces with
    one private address: an ask from it cannot say which one is asking, so it is refused and
    nothing is created anywhere."""
    from controller.aws import AwsApi, AwsSettings, CallRecorder
    from controller.observability.metrics import Metrics
    from controller.service.enrollment.admission import Admission
    from controller.service.enrollment.directory import WorkspaceDirectory
    from controller.service.enrollment.issuer import ActivationIssuer
    from controller.service.enrollment.service import EnrollmentService, EnrollmentTarget
    from fleet_sandbox.client import SandboxClient

    regions = {"east": "us-east-1", "west": "us-west-2"}
    rows = {}
    for name, region in regions.items():
        admin = SandboxClient(sandbox.endpoint, region=region)
        body = {"count": 1, "directoryId": "d-1234567890", "tags": {}}
        (workspace_id,) = admin.post("fleet/workspaces", body)["workspaceIds"]
        admin.post("fleet/enrollment", {"url": "http://127.0.0.1:9"})  # loopback addresses
        rows[name] = next(
            r for r in admin.get("fleet")["workspaces"] if r["workspaceId"] == workspace_id
        )
    assert rows["east"]["ipAddress"] == rows["west"]["ipAddress"]  # each Region's first address

    def target(name: str) -> EnrollmentTarget:
        aws = AwsApi(
            AwsSettings(region=regions[name], endpoint_url=sandbox.endpoint, rate_limits=None),
            CallRecorder(),
            sleep=lambda seconds: None,
        )
        return EnrollmentTarget(name, WorkspaceDirectory(aws), ActivationIssuer(aws, CONTROLLER_ID))

    metrics = Metrics(controller_id=CONTROLLER_ID)
    service = EnrollmentService(
        lambda: desired, [target("east"), target("west")], metrics, Admission(AdmissionSettings())
    )
    answer = service.handle(
        rows["east"]["ipAddress"],
        [],
        json.dumps({"computerName": rows["east"]["computerName"]}).encode(),
    )
    assert (answer.status, answer.result) == (403, "refused_ambiguous")
    for region in regions.values():
        assert sandbox.client("ssm", region=region).describe_activations()["ActivationList"] == []


def test_a_directory_dropped_from_the_enrollment_stops_enrolling_at_once(sandbox, tmp_path):
    """The index read while both directories were named still holds the dropped one's
    WorkSpaces: they are out of scope for the next ask, not answered from the old index."""
    both = desired_state(tmp_path / "both", scope=(DIRECTORY, OTHER_DIRECTORY))
    narrowed = desired_state(tmp_path / "narrowed")  # DIRECTORY only
    (mine,) = workspaces(sandbox, 1)
    (dropped,) = workspaces(sandbox, 1, directory=OTHER_DIRECTORY)
    current = [both]
    with endpoint(sandbox, lambda: current[0]) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        rows = fleet(sandbox)
        assert ep.ask(rows[mine]["ipAddress"], rows[mine]["computerName"])[0] == 200
        current[0] = narrowed
        status, _, _ = ep.ask(rows[dropped]["ipAddress"], rows[dropped]["computerName"])
        assert status == 403
        assert ep.counted("refused_no_workspace") == 1
    assert [tags(a["Tags"])[WORKSPACE_ID_TAG] for a in activations(sandbox)] == [mine]
