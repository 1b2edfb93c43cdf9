"""README, Secrets: a shared activation's code is held only between CreateActivation and
PutParameter, is registered with the redaction layer the moment it exists, and observing never
decrypts the published parameter (the sandbox keeps SecureString values ciphertext unless asked
WithDecryption, as AWS does: the calls a plan makes are checked, not just what it printed).
"""

from __future__ import annotations

from controller.observability.redaction import REDACTED, redact_text
from tests.engine.helpers import PARAMETER, cli, copy_example

DECRYPTING_READS = {"GetParameter", "GetParameters", "GetParametersByPath", "GetParameterHistory"}


def test_the_code_apply_creates_is_registered_with_redaction_at_once(sandbox, tmp_path, capsys):
    directory = copy_example(tmp_path / "desired", only=("activation.yaml",))
    before = set(sandbox.admin.get("issued-codes")["codes"])
    assert cli(sandbox, "apply", str(directory)) == 0
    [code] = set(sandbox.admin.get("issued-codes")["codes"]) - before
    published = sandbox.client("ssm").get_parameter(Name=PARAMETER, WithDecryption=True)
    assert code in published["Parameter"]["Value"]  # the code the controller created
    assert redact_text(f"failed with {code}!") == f"failed with {REDACTED}!"
    assert code not in capsys.readouterr().out


def test_observing_never_reads_the_published_parameters_value(sandbox, tmp_path, capsys):
    directory = copy_example(tmp_path / "desired", only=("activation.yaml",))
    assert cli(sandbox, "apply", str(directory)) == 0
    sandbox.admin.reset_calls()
    assert cli(sandbox, "plan", str(directory), "--detailed-exitcode") == 0
    ssm = set(sandbox.admin.call_counts("ssm"))
    assert "DescribeParameters" in ssm  # it did look at the parameter (name, description, tags)
    assert not ssm & DECRYPTING_READS, sorted(ssm & DECRYPTING_READS)
    # and what a read without WithDecryption would see is ciphertext, not the code
    plain = sandbox.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    assert '"code"' not in plain
