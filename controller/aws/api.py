"""The one place every AWS call goes through.

``AwsApi.call("ssm", "DescribeActivations", ...)`` rate-limits per service, retries transient
failures with jittered exponential backoff (tenacity; botocore's own retries are switched off so
there is exactly one retry layer), honours Retry-After, and reports every attempt to the
``CallRecorder``. A write that is not idempotent (a Create) is retried only when AWS certainly did
not act; otherwise the failure surfaces and the next observation decides, so a lost response never
becomes a duplicate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from controller.aws.accounting import CallRecorder, is_read
from controller.aws.clock import AwsClock
from controller.aws.errors import (
    Outcome,
    classify,
    error_code,
    is_transient,
    request_never_arrived,
    retry_after_seconds,
)
from controller.aws.ratelimit import DEFAULT_RATES, RateLimiter

# Writes that give the same result when repeated, so any transient failure may be retried.
IDEMPOTENT_WRITES = frozenset(
    {
        "AddTagsToResource",
        "RemoveTagsFromResource",
        "PutParameter",
        "DeleteParameter",
        "DeleteActivation",
        "DeregisterManagedInstance",
        "UpdateDocumentDefaultVersion",
        "DeleteDocument",
        "DeleteAssociation",
        "PutObject",
        "CreateTags",
        "DeleteTags",
        "DeleteMessageBatch",  # deleting a message already deleted changes nothing
    }
)


@dataclass
class AwsSettings:
    """Where and how to call AWS. Region, profile and endpoint default to boto3's own config."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = 8
    backoff_base_seconds: float = 0.25
    backoff_max_seconds: float = 20.0
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    rate_limits: dict[str, tuple[float, float]] | None = field(
        default_factory=lambda: dict(DEFAULT_RATES)
    )


@cache
def _paginator_config(service: str, operation: str) -> dict[str, Any]:
    model = botocore.session.get_session().get_paginator_model(service)
    return dict(model.get_paginator(operation))


def _snake(operation: str) -> str:
    return botocore.xform_name(operation)


class AwsApi:
    def __init__(
        self,
        settings: AwsSettings | None = None,
        recorder: CallRecorder | None = None,
        session: boto3.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or AwsSettings()
        self.recorder = recorder or CallRecorder()
        self._session = session or boto3.Session(
            profile_name=self.settings.profile, region_name=self.settings.region
        )
        self._sleep = sleep
        self.clock = AwsClock()  # AWS's time, from every response's Date header
        self._limiter = RateLimiter(self.settings.rate_limits)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=self.settings.connect_timeout_seconds,
            read_timeout=self.settings.read_timeout_seconds,
            max_pool_connections=20,
        )

    @property
    def region(self) -> str:
        region = self._session.region_name or self.settings.region
        if not region:
            raise RuntimeError(
                "no AWS region configured: set AWS_REGION / AWS_DEFAULT_REGION or use --region"
            )
        return str(region)

    def account_id(self) -> str:
        return str(self.call("sts", "GetCallerIdentity")["Account"])

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,  # type: ignore[call-overload]
                    region_name=self.region,
                    endpoint_url=self.settings.endpoint_url,
                    config=self._config,
                )
            return self._clients[service]

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call one operation (botocore name, e.g. ``DescribeInstanceInformation``)."""
        method = getattr(self.client(service), _snake(operation))
        retry_any_transient = is_read(operation) or operation in IDEMPOTENT_WRITES

        def should_retry(error: BaseException) -> bool:
            if retry_any_transient:
                return is_transient(error)
            return request_never_arrived(error)

        def attempt() -> dict[str, Any]:
            self._limiter.acquire(service)
            rewind = getattr(params.get("Body"), "seek", None)
            if rewind is not None:  # a streamed upload: every attempt sends it from the start
                rewind(0)
            sent = self.clock.local_time()
            try:
                response = method(**params)
            except Exception as error:
                self._observe_date(getattr(error, "response", None), sent)
                self.recorder.record(service, operation, classify(error))
                raise
            self._observe_date(response, sent)
            self.recorder.record(service, operation, Outcome.SUCCESS)
            return dict(response)

        def before_sleep(state: RetryCallState) -> None:
            self.recorder.record_retry(service, operation)

        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(should_retry),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)

    def _observe_date(self, response: Any, sent: float) -> None:
        """Feed the ``Date`` header of an answer (a success or an AWS error) to the clock."""
        if not isinstance(response, dict):
            return
        headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        self.clock.observe(headers.get("date"), sent, self.clock.local_time())

    def call_if_exists(
        self, service: str, operation: str, *, absent: str, **params: Any
    ) -> dict[str, Any] | None:
        """``call``, but None when AWS answers that the resource is not there (the error code
        ``absent``): a describe of something not created yet, a delete of something already gone."""
        try:
            return self.call(service, operation, **params)
        except Exception as error:
            if error_code(error) == absent:
                return None
            raise

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_random_exponential(
            multiplier=self.settings.backoff_base_seconds, max=self.settings.backoff_max_seconds
        )(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        hint = retry_after_seconds(error) if error is not None else None
        return max(backoff, hint or 0.0)

    def pages(self, service: str, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a paginated operation, each fetched through ``call``."""
        config = _paginator_config(service, operation)
        input_token, output_token = config["input_token"], config["output_token"]
        while True:
            page = self.call(service, operation, **params)
            yield page
            token = page.get(output_token)
            if not token:
                return
            params = {**params, input_token: token}

    def items(self, service: str, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        """The result items of every page (the paginator's result key)."""
        result_key = _paginator_config(service, operation)["result_key"]
        for page in self.pages(service, operation, **params):
            yield from page.get(result_key, [])
