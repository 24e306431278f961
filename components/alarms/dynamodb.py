"""DynamoDB alarms.

WriteThrottleEvents/ReadThrottleEvents take TableName; SystemErrors exists only
per TableName + Operation (with TableName alone the alarm never fires):
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html
"""
from __future__ import annotations

import pulumi

from .spec import AlarmSpec

NAMESPACE = "AWS/DynamoDB"


def readings_alarms(table_name: pulumi.Input[str]) -> list[AlarmSpec]:
    return [
        AlarmSpec("readings-write-throttles", NAMESPACE, "WriteThrottleEvents", {"TableName": table_name},
                  "Readings table write throttles."),
        AlarmSpec("readings-system-errors", NAMESPACE, "SystemErrors",
                  {"TableName": table_name, "Operation": "BatchWriteItem"},
                  "Readings table BatchWriteItem service errors."),
    ]


def devices_alarms(table_name: pulumi.Input[str]) -> list[AlarmSpec]:
    return [
        AlarmSpec("devices-write-throttles", NAMESPACE, "WriteThrottleEvents", {"TableName": table_name},
                  "Devices table write throttles."),
        AlarmSpec("devices-read-throttles", NAMESPACE, "ReadThrottleEvents", {"TableName": table_name},
                  "Devices table read throttles (authorizer lookups)."),
        AlarmSpec("devices-update-system-errors", NAMESPACE, "SystemErrors",
                  {"TableName": table_name, "Operation": "UpdateItem"},
                  "Devices table UpdateItem service errors (processor)."),
        AlarmSpec("devices-get-system-errors", NAMESPACE, "SystemErrors",
                  {"TableName": table_name, "Operation": "GetItem"},
                  "Devices table GetItem service errors (authorizer)."),
    ]
