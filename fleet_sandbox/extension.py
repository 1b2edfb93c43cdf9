"""Register sandbox operations on moto's response classes.

moto routes a JSON-protocol request (``X-Amz-Target: AmazonSSM.CreateActivation``) to the
snake_case method of the service's response class. An operation moto lacks (or gets wrong) is a
handler registered here with ``@operation("ssm", "CreateActivation")``; ``install()`` attaches each
one as that method. Every handler's input is validated against the botocore model first and its
output checked against the output shape, so handlers only hold behaviour.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse

from fleet_sandbox.shapes import validate_input, validate_output


class ServiceError(ServiceException):
    """An AWS error response: ``code`` is the error shape name botocore maps to an exception."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def validation_error(*problems: str) -> ServiceError:
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return ServiceError(
        "ValidationException", f"{count} validation {noun} detected: " + "; ".join(problems)
    )


@dataclass
class Call:
    """One request to a sandbox handler."""

    service: str
    operation: str
    params: dict[str, Any]
    account_id: str
    region: str
    delegate: Callable[[], Any] = field(repr=False)
    """moto's own implementation of the operation (for handlers that extend rather than replace)."""


Handler = Callable[[Call], Any]
"""Returns the response dict, None for an empty response, or what ``call.delegate()`` returned."""

Finish = Callable[[Any], None]
Around = Callable[[Call], Finish | None]
"""Called before a handler runs (validated input); what it returns is called with the answer once
the handler succeeded. For state kept beside the calls (the events AWS would emit)."""

_around: list[Around] = []


def around_handled(listener: Around) -> Around:
    """Register ``listener`` for every handled call (see ``Around``)."""
    if listener not in _around:
        _around.append(listener)
    return listener


_handlers: dict[tuple[str, str], Handler] = {}
_shape_violations: list[str] = []
_violations_lock = threading.Lock()


def operation(service: str, name: str) -> Callable[[Handler], Handler]:
    """Decorator: ``handler`` answers ``name`` of ``service`` (the botocore client name)."""

    def register(handler: Handler) -> Handler:
        _handlers[(service, name)] = handler
        return handler

    return register


def registered_operations() -> list[tuple[str, str]]:
    return sorted(_handlers)


def shape_violations() -> list[str]:
    """Responses refused because they broke their output shape (read by the fidelity test)."""
    with _violations_lock:
        return list(_shape_violations)


def clear_shape_violations() -> None:
    with _violations_lock:
        _shape_violations.clear()


def _response_classes() -> dict[str, type[BaseResponse]]:
    from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse
    from moto.ssm.responses import SimpleSystemManagerResponse
    from moto.workspaces.responses import WorkSpacesResponse

    return {
        "ssm": SimpleSystemManagerResponse,
        "workspaces": WorkSpacesResponse,
        "resourcegroupstaggingapi": ResourceGroupsTaggingAPIResponse,
    }


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_originals: dict[tuple[str, str], Any] = {}
_install_lock = threading.Lock()


def install() -> None:
    """Attach every registered handler to moto (idempotent)."""
    classes = _response_classes()
    with _install_lock:
        for (service, name), handler in _handlers.items():
            cls = classes[service]
            method_name = _snake_case(name)
            if (service, name) not in _originals:
                _originals[(service, name)] = cls.__dict__.get(method_name)
            setattr(cls, method_name, _bind(service, name, handler, _originals[(service, name)]))


def _bind(service: str, name: str, handler: Handler, original: Any) -> Callable[[Any], Any]:
    def method(response: BaseResponse) -> ActionResult:
        params = _parse_body(response.body)
        problems = validate_input(service, name, params)
        if problems:
            raise validation_error(*problems)

        def delegate() -> Any:
            if original is None:
                raise ServiceError("InternalFailure", f"moto has no {name}")
            return original(response)

        call = Call(service, name, params, response.current_account, response.region, delegate)
        finishers = [finish for listener in list(_around) if (finish := listener(call))]
        result = handler(call)
        for finish in finishers:
            finish(result)
        if result is None:
            result = {}
        elif not isinstance(result, dict):  # moto's own answer (from delegate), passed through
            return result  # type: ignore[no-any-return]
        problems = validate_output(service, name, result)
        if problems:
            with _violations_lock:
                _shape_violations.extend(f"{service}.{name}: {p}" for p in problems)
            raise ServiceError(
                "InternalFailure", f"sandbox response for {name} breaks its shape: {problems[0]}"
            )
        return ActionResult(result)

    method.__name__ = _snake_case(name)
    return method


def _parse_body(body: str | bytes | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ServiceError(
            "SerializationException", f"Request body is not valid JSON: {error}"
        ) from None
    if not isinstance(parsed, dict):
        raise ServiceError("SerializationException", "Request body must be a JSON object")
    return parsed
