"""AWS access: one ``AwsApi`` through which every call is made, retried and counted."""

from controller.aws.accounting import CallRecorder, is_read
from controller.aws.api import AwsApi, AwsSettings
from controller.aws.errors import Outcome, error_code, is_access_denied

__all__ = [
    "AwsApi",
    "AwsSettings",
    "CallRecorder",
    "Outcome",
    "error_code",
    "is_access_denied",
    "is_read",
]
