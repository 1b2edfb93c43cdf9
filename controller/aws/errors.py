"""How an AWS failure is classified: what may be retried, and what a retry could duplicate."""

from __future__ import annotations

from enum import StrEnum

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",  # SSM, WorkSpaces, DynamoDB
        "ThrottledException",  # Resource Groups Tagging API
        "TooManyUpdates",  # SSM, on concurrent writes to one resource
        "Throttling",
        "RequestLimitExceeded",
        "SlowDown",  # S3
        "ProvisionedThroughputExceededException",
        "RequestThrottledException",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)


class Outcome(StrEnum):
    SUCCESS = "success"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    CONNECTION_ERROR = "connection_error"


def error_code(error: BaseException) -> str | None:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) or None
    return None


def classify(error: BaseException) -> Outcome:
    if isinstance(error, ClientError):
        if error_code(error) in THROTTLING_CODES:
            return Outcome.THROTTLED
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) or 400)
        return Outcome.SERVER_ERROR if status >= 500 else Outcome.CLIENT_ERROR
    if isinstance(error, BotocoreConnectionError | HTTPClientError):
        return Outcome.CONNECTION_ERROR
    return Outcome.CLIENT_ERROR


def request_never_arrived(error: BaseException) -> bool:
    """True when AWS certainly did not act: the request was refused or never sent.

    A throttle is a refusal. A failure to connect means nothing was sent. A closed connection or a
    read timeout after sending is ambiguous: the server may have acted and the answer was lost.
    """
    if isinstance(error, ClientError):
        return error_code(error) in THROTTLING_CODES
    # botocore's ConnectionError family (EndpointConnectionError, ConnectTimeoutError) is raised
    # before a byte is sent; HTTPClientError (ConnectionClosedError, ReadTimeoutError) after.
    return isinstance(error, BotocoreConnectionError)


def is_transient(error: BaseException) -> bool:
    return classify(error) in (Outcome.THROTTLED, Outcome.SERVER_ERROR, Outcome.CONNECTION_ERROR)


def is_access_denied(error: BaseException) -> bool:
    return error_code(error) in ACCESS_DENIED_CODES


def retry_after_seconds(error: BaseException) -> float | None:
    """The server's Retry-After hint, when it sent one."""
    if not isinstance(error, ClientError):
        return None
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
