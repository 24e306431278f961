"""Lambda function alarms.

Errors, Throttles, Duration (ms) per FunctionName; IteratorAge (use Maximum) and
DestinationDeliveryFailures for stream event source mappings:
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
"""
from __future__ import annotations

import pulumi

from .spec import AlarmSpec

NAMESPACE = "AWS/Lambda"


def function_alarms(role: str, function_name: pulumi.Input[str], timeout_s: int) -> list[AlarmSpec]:
    dims = {"FunctionName": function_name}
    return [
        AlarmSpec(f"{role}-errors", NAMESPACE, "Errors", dims, f"{role} function errors."),
        AlarmSpec(f"{role}-throttles", NAMESPACE, "Throttles", dims, f"{role} function throttles."),
        AlarmSpec(f"{role}-duration", NAMESPACE, "Duration", dims,
                  f"{role} function duration near its {timeout_s} s timeout.", timeout_ms=timeout_s * 1000),
    ]


def stream_consumer_alarms(function_name: pulumi.Input[str]) -> list[AlarmSpec]:
    dims = {"FunctionName": function_name}
    return [
        AlarmSpec("processor-iterator-age", NAMESPACE, "IteratorAge", dims,
                  "Age of the newest record in the processor's last batch (ms)."),
        AlarmSpec("processor-destination-delivery-failures", NAMESPACE, "DestinationDeliveryFailures", dims,
                  "Failed batches that could not be sent to the on-failure DLQ."),
    ]
