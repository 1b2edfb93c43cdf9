"""Parameter Store as AWS serves it: SecureString ciphertext, KMS keys, value limits."""

from __future__ import annotations

import base64

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

NO_RETRY = Config(retries={"total_max_attempts": 1})
SECRET = '{"id": "4a1c", "code": "Zq8Xm2PvR7tK1wYs0BnE", "region": "us-east-1"}'


def _error(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def test_a_secure_string_is_ciphertext_without_decryption_and_clear_with_it(sandbox):
    ssm = sandbox.client("ssm")
    ssm.put_parameter(Name="/fleet/activation", Value=SECRET, Type="SecureString")
    hidden = ssm.get_parameter(Name="/fleet/activation")["Parameter"]["Value"]
    assert "Zq8Xm2PvR7tK1wYs0BnE" not in hidden and "kms" not in hidden
    assert base64.b64decode(hidden)[:1] == b"\x01"  # a KMS blob, base64
    assert SECRET.encode() not in base64.b64decode(hidden)
    clear = ssm.get_parameter(Name="/fleet/activation", WithDecryption=True)["Parameter"]
    assert clear["Value"] == SECRET
    for answer in (
        ssm.get_parameters(Names=["/fleet/activation"])["Parameters"],
        ssm.get_parameters_by_path(Path="/fleet")["Parameters"],
        ssm.get_parameter_history(Name="/fleet/activation")["Parameters"],
    ):
        assert [p["Value"] for p in answer] == [hidden]
    assert (
        ssm.get_parameters(Names=["/fleet/activation"], WithDecryption=True)["Parameters"][0][
            "Value"
        ]
        == SECRET
    )


def test_a_new_version_has_a_different_ciphertext(sandbox):
    ssm = sandbox.client("ssm")
    ssm.put_parameter(Name="/p", Value="same", Type="SecureString")
    first = ssm.get_parameter(Name="/p")["Parameter"]["Value"]
    assert ssm.get_parameter(Name="/p")["Parameter"]["Value"] == first  # stable per version
    ssm.put_parameter(Name="/p", Value="same", Type="SecureString", Overwrite=True)
    assert ssm.get_parameter(Name="/p")["Parameter"]["Value"] != first


def test_plain_strings_are_returned_as_stored(sandbox):
    ssm = sandbox.client("ssm")
    ssm.put_parameter(Name="/plain", Value="hello", Type="String")
    assert ssm.get_parameter(Name="/plain")["Parameter"]["Value"] == "hello"


def test_a_secure_string_key_must_exist_in_kms(sandbox):
    ssm = sandbox.client("ssm", config=NO_RETRY)
    with pytest.raises(ClientError) as raised:
        ssm.put_parameter(Name="/k", Value="v", Type="SecureString", KeyId="alias/nope")
    assert _error(raised) == "InvalidKeyId"
    with pytest.raises(ClientError):
        ssm.get_parameter(Name="/k")
    key = sandbox.client("kms").create_key()["KeyMetadata"]
    sandbox.client("kms").create_alias(AliasName="alias/fleet", TargetKeyId=key["KeyId"])
    for key_id in (key["KeyId"], key["Arn"], "alias/fleet", "alias/aws/ssm"):
        ssm.put_parameter(Name="/k", Value="v", Type="SecureString", KeyId=key_id, Overwrite=True)
    sandbox.client("kms").disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as raised:
        ssm.put_parameter(
            Name="/k", Value="v", Type="SecureString", KeyId=key["KeyId"], Overwrite=True
        )
    assert _error(raised) == "InvalidKeyId"


def test_standard_values_hold_4_kb_and_advanced_8_kb(sandbox):
    ssm = sandbox.client("ssm", config=NO_RETRY)
    ssm.put_parameter(Name="/big", Value="x" * 4096, Type="String")
    with pytest.raises(ClientError) as raised:
        ssm.put_parameter(Name="/bigger", Value="x" * 4097, Type="String")
    assert _error(raised) == "ValidationException"
    with pytest.raises(ClientError):  # bytes, not characters: 2,049 two-byte characters
        ssm.put_parameter(Name="/wide", Value="é" * 2049, Type="String")
    ssm.put_parameter(Name="/bigger", Value="x" * 8192, Type="String", Tier="Advanced")
    with pytest.raises(ClientError):
        ssm.put_parameter(Name="/biggest", Value="x" * 8193, Type="String", Tier="Advanced")


@pytest.mark.parametrize("value", ["{{ssm:/other}}", "a {{x}} b", "{{}}"])
def test_a_value_cannot_nest_another_parameter(sandbox, value):
    ssm = sandbox.client("ssm", config=NO_RETRY)
    with pytest.raises(ClientError) as raised:
        ssm.put_parameter(Name="/nested", Value=value, Type="String")
    assert _error(raised) == "ValidationException"
    ssm.put_parameter(Name="/braces", Value="{not nested}", Type="String")
