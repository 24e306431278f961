"""DLQ alarm (dimension QueueName).

https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
"""
from __future__ import annotations

import pulumi

from .spec import AlarmSpec

NAMESPACE = "AWS/SQS"


def dlq_alarms(queue_name: pulumi.Input[str]) -> list[AlarmSpec]:
    return [
        AlarmSpec("dlq-messages-visible", NAMESPACE, "ApproximateNumberOfMessagesVisible",
                  {"QueueName": queue_name}, "Failed processor batches waiting in the DLQ."),
    ]
