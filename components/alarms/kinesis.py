"""Kinesis stream alarms (dimension StreamName).

https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html
"""
from __future__ import annotations

import pulumi

from .spec import AlarmSpec

NAMESPACE = "AWS/Kinesis"


def stream_alarms(stream_name: pulumi.Input[str]) -> list[AlarmSpec]:
    dims = {"StreamName": stream_name}
    return [
        AlarmSpec("stream-throttled-records", NAMESPACE, "PutRecords.ThrottledRecords", dims,
                  "PutRecords entries rejected for throughput."),
        AlarmSpec("stream-write-throughput-exceeded", NAMESPACE, "WriteProvisionedThroughputExceeded", dims,
                  "Writes throttled for exceeding the stream's throughput."),
        AlarmSpec("stream-iterator-age", NAMESPACE, "GetRecords.IteratorAgeMilliseconds", dims,
                  "Age of the oldest record read from the stream (ms)."),
    ]
