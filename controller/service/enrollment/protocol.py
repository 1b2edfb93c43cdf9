"""The enrollment protocol, version 1: what a WorkSpace sends and what it gets back.

The WorkSpace's startup script (``deploy/workspaces/Enroll-WorkSpace.ps1``) and the sandbox's
simulated WorkSpaces (``fleet_sandbox/enrolling.py``) speak it; a test parses the script and checks
that it sends exactly this::

    POST /v1/enroll HTTP/1.1
    Content-Type: application/json

    {"computerName": "WSAMZN-ABCD1234"}

from the WorkSpace's own address. Who is asking is decided by that address (or, behind a trusted
proxy, X-Forwarded-For); the body only carries the name the WorkSpace claims, which must be the
computer name DescribeWorkspaces reports for the WorkSpace at that address. Answers:

======  =================================================================================
status  body
======  =================================================================================
200     ``{"activationId", "activationCode", "region", "expiresAt", "workspaceId",
        "instanceName"}``: register with these (the same unused activation on every ask)
400     ``{"result": "bad_request"}``: not JSON, or not exactly ``{"computerName": <name>}``
403     ``{"result": "refused"}``: the caller is not the WorkSpace it claims to be (why is
        logged and counted, never told to the caller)
429     ``{"result": "rate_limited"}`` and ``Retry-After``: too many asks
503     ``{"result": "unavailable"}`` and ``Retry-After``: try later (not configured yet,
        another replica holds the target, AWS failed)
======  =================================================================================
"""

from __future__ import annotations

import re

PATH = "/v1/enroll"
METHOD = "POST"
HEALTH_PATH = "/healthz"  # the load balancer's check: 200 where asks can be answered (lease held)
CONTENT_TYPE = "application/json"
REQUEST_FIELDS = ("computerName",)
RESPONSE_FIELDS = (
    "activationId",
    "activationCode",
    "region",
    "expiresAt",
    "workspaceId",
    "instanceName",
)
MAX_BODY_BYTES = (
    1024  # a computer name is at most 63 characters; anything bigger is not a WorkSpace
)

COMPUTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
"""What a claimed name may look like: a DNS label (NetBIOS names are at most 15 of these)."""

# How each decision is counted (fleet_enrollment_requests_total{result}) and answered.
RESULT_STATUS = {
    "issued": 200,  # a new activation was created for the WorkSpace
    "reused": 200,  # the WorkSpace's unused activation was handed out again
    "refused_no_workspace": 403,  # no AVAILABLE in-scope WorkSpace has the caller's address
    "refused_name_mismatch": 403,  # the WorkSpace at that address has another computer name
    "refused_not_available": 403,  # the WorkSpace is not AVAILABLE (stopped, terminated, ...)
    "refused_ambiguous": 403,  # several WorkSpaces (or targets) claim that address
    "rate_limited_source": 429,  # this address asked too often
    "rate_limited_total": 429,  # everyone together asked too often
    "busy": 503,  # too many requests in flight at once
    "bad_request": 400,
    "unavailable": 503,  # not configured, not this replica's target, or AWS failed
    "error": 500,  # a bug or a desired state that cannot produce an activation
}
RESULTS = tuple(RESULT_STATUS)

ANSWER_WORD = {200: "ok", 400: "bad_request", 403: "refused", 429: "rate_limited", 500: "error"}
ANSWER_WORD_DEFAULT = "unavailable"
