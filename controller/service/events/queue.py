"""The SQS queue EventBridge delivers to: long-polled receives, deletes in batches.

Every call goes through the target's ``AwsApi`` (counted, retried, on the target's credentials).
A message is deleted only once what it named was reconciled (or it was found unreadable), so a
replica that dies mid-pass leaves it to be delivered again after the visibility timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.aws import AwsApi

MAX_MESSAGES = 10  # ReceiveMessage MaxNumberOfMessages: 1..10
MAX_WAIT_SECONDS = 20  # ReceiveMessage WaitTimeSeconds: 0..20 (long polling)
DELETE_BATCH = 10  # DeleteMessageBatch: at most 10 entries


@dataclass(frozen=True)
class Message:
    receipt: str
    body: str


class EventQueue:
    def __init__(self, aws: AwsApi, url: str) -> None:
        self.aws = aws
        self.url = url

    def receive(self, wait_seconds: float) -> list[Message]:
        wait = max(0, min(MAX_WAIT_SECONDS, int(wait_seconds)))
        answer = self.aws.call(
            "sqs",
            "ReceiveMessage",
            QueueUrl=self.url,
            MaxNumberOfMessages=MAX_MESSAGES,
            WaitTimeSeconds=wait,
        )
        return [
            Message(item["ReceiptHandle"], item.get("Body", ""))
            for item in answer.get("Messages", [])
        ]

    def delete(self, messages: Sequence[Message]) -> None:
        for start in range(0, len(messages), DELETE_BATCH):
            chunk = messages[start : start + DELETE_BATCH]
            self.aws.call(
                "sqs",
                "DeleteMessageBatch",
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message.receipt}
                    for index, message in enumerate(chunk)
                ],
            )


__all__ = ["EventQueue", "Message"]
