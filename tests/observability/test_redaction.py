"""Redaction rules: by key name and by registered value, through every container type."""

from __future__ import annotations

from collections import namedtuple

import pytest

from controller.observability.redaction import (
    REDACTED,
    is_secret_key,
    redact_event,
    redact_text,
    redact_value,
    register_secret,
)


@pytest.mark.parametrize(
    "key",
    [
        "code",
        "Code",
        "activation_code",
        "ActivationCode",
        "activation-code",
        "secret",
        "webhook_secret",
        "AWS_SECRET_ACCESS_KEY",
        "password",
        "db_password",
        "token",
        "SessionToken",
        "credentials",
        "Authorization",
        "x-hub-signature-256",
        "api_key",
        "cookie",
    ],
)
def test_keys_named_like_secrets(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["status_code", "error_code", "exit_code", "NextToken", "next_token", "name", "activation_id"],
)
def test_ordinary_keys_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


def test_value_under_secret_key_is_redacted_without_registration() -> None:
    event = {
        "event": "created",
        "activation_code": "never-registered-1234",
        "ActivationId": "a1b2",
        "status_code": 200,
        "nested": {"Password": "hunter2-long", "user": "alice", "token": None},
    }
    out = redact_event(None, "info", event)
    assert out["activation_code"] == REDACTED
    assert out["nested"]["Password"] == REDACTED
    # Unregistered values under ordinary keys are left alone, and a missing token stays visible.
    assert out["ActivationId"] == "a1b2"
    assert out["status_code"] == 200
    assert out["nested"]["user"] == "alice"
    assert out["nested"]["token"] is None


def test_registered_secret_is_replaced_inside_any_string(secret: str) -> None:
    Pair = namedtuple("Pair", "left right")
    value = {
        "msg": f"prefix{secret}suffix",
        "list": [1, f"a {secret}", {"deep": [(secret,)]}],
        "pair": Pair(secret, "ok"),
        "set": {secret},
        "bytes": f"raw {secret}".encode(),
        secret: "secret used as a key",
        "error": RuntimeError(f"failed with {secret}"),
    }
    out = redact_value(value)
    assert secret not in repr(out)
    assert out["msg"] == f"prefix{REDACTED}suffix"
    assert out["pair"] == Pair(REDACTED, "ok")
    assert out["error"] == f"failed with {REDACTED}"
    assert out[REDACTED] == "secret used as a key"


def test_objects_without_secrets_are_untouched(secret: str) -> None:
    error = RuntimeError("harmless")
    assert redact_value({"error": error})["error"] is error


def test_redact_text_for_plan_output(secret: str) -> None:
    other = "XY" + secret[2:] + "Z"  # overlapping but different: must not be touched
    register_secret(secret + "-longer")
    text = f"code {secret}, longer {secret}-longer, other {other}"
    assert redact_text(text) == f"code {REDACTED}, longer {REDACTED}, other {other}"


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        register_secret("abc")


def test_thousands_of_codes_are_each_redacted_in_time_linear_in_the_text() -> None:
    """A fleet that enrolls thousands of WorkSpaces registers a code per WorkSpace; each is found
    wherever it appears, and scanning does not grow with how many there are (counted, not timed:
    the number of window look-ups is bounded by the text and the distinct lengths)."""
    import secrets as random_source
    import string

    alphabet = string.ascii_letters + string.digits + "+/"
    codes = ["".join(random_source.choice(alphabet) for _ in range(20)) for _ in range(5000)]
    for code in codes:
        register_secret(code)
    for code in codes[::97]:
        assert redact_text(f"code={code}&next") == f"code={REDACTED}&next"
        assert redact_text(f"[{code}]") == f"[{REDACTED}]"
    prose = "operation applied to ws-0123456789 through mi-0123456789abcdef0 in 0.25s"
    assert redact_text(prose) == prose


def test_a_secret_with_other_characters_and_a_token_secret_in_one_text() -> None:
    register_secret("correct horse battery staple!")
    register_secret("TokenShapedSecret0001")
    text = "a correct horse battery staple! b TokenShapedSecret0001c"
    assert redact_text(text) == f"a {REDACTED} b {REDACTED}c"


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_plan_output_is_redacted_in_every_format_as_a_last_line_of_defence(fmt: str) -> None:
    """No secret ever enters a plan; if one did (a reason quoting an AWS error, a changed value),
    every rendering still replaces it."""
    from dataclasses import dataclass

    from controller.contract import Action, FieldChange, Finding, Operation, Plan, Severity, Step
    from controller.engine.render import render_json, render_markdown, render_text

    @dataclass(frozen=True, kw_only=True)
    class Noop(Step):
        pass

    code = "PlanLeak0123456789abcdefABCDEF+/="
    register_secret(code)
    plan = Plan(
        operations=[
            Operation(
                kind="Activation",
                name="workspaces",
                action=Action.REPLACE,
                resource="(new)",
                changes=(FieldChange("description", f"old {code}", "new"),),
                reason=f"AWS said: {code}",
                payload=Noop(),
            )
        ],
        findings=[
            Finding(kind="Activation", name="workspaces", severity=Severity.INFO, message=code)
        ],
    )
    rendered = {"text": render_text, "markdown": render_markdown, "json": render_json}[fmt](plan)
    assert code not in rendered
    assert REDACTED in rendered
