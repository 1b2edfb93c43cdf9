"""Events: EventBridge events from an SQS queue, turned into targeted reconciles.

``notice`` reads one event (pure); ``queue`` talks to SQS; ``worker`` batches what the events
name and runs the targeted passes. See the README's *Events and the live cache*.
"""

from controller.service.events.notice import BadEvent, Notice, parse_event
from controller.service.events.queue import EventQueue, Message
from controller.service.events.worker import EventSettings, EventWorker

__all__ = [
    "BadEvent",
    "EventQueue",
    "EventSettings",
    "EventWorker",
    "Message",
    "Notice",
    "parse_event",
]
