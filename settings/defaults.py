"""Default values for every project config key, in one place.

Kept apart from the parsing code (Solutions Constructs style) so a reviewer
sees the shipped defaults at a glance, and so Pulumi.yaml's ``config:`` block
can be checked against this table by a test. Values are written the way
Pulumi hands them to the program: strings (arrays and objects as JSON text).
"""
from __future__ import annotations

from typing import Final

#: The project name; config keys are read as ``iot-ingest:<key>``.
PROJECT: Final = "iot-ingest"

#: Powertools for AWS Lambda (Python) V3, AWS-managed public layer, python3.12 arm64.
#: Pattern from https://docs.powertools.aws.dev/lambda/python/latest/ (Lambda Layer table):
#: arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{python_version}-arm64:{version}
POWERTOOLS_LAYER_ACCOUNT: Final = "017000801446"
POWERTOOLS_LAYER_NAME: Final = "AWSLambdaPowertoolsPythonV3-python312-arm64"
POWERTOOLS_LAYER_VERSION: Final = 27


def powertools_layer_arn(region: str) -> str:
    """The AWS-managed Powertools layer ARN for ``region`` (aws partition)."""
    return (
        f"arn:aws:lambda:{region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
        f"{POWERTOOLS_LAYER_NAME}:{POWERTOOLS_LAYER_VERSION}"
    )


#: key -> default value as text. Every key the program reads is listed here.
DEFAULTS: Final[dict[str, str]] = {
    # stream
    "streamMode": "PROVISIONED",
    "shardCount": "1",
    "streamRetentionHours": "24",
    "streamKmsKeyArn": "",  # "" -> AWS managed key alias/aws/kinesis
    # storage
    "readingsTtlDays": "30",
    "pointInTimeRecovery": "false",
    "protect": "false",
    # functions
    "authorizerMemoryMb": "256",
    "authorizerTimeoutSeconds": "5",
    "authorizerReservedConcurrency": "-1",
    "ingestMemoryMb": "512",
    "ingestTimeoutSeconds": "10",
    "ingestReservedConcurrency": "-1",
    "processorMemoryMb": "512",
    "processorTimeoutSeconds": "60",
    "processorReservedConcurrency": "-1",
    "powertoolsLayerArn": "",  # "" -> powertools_layer_arn(region)
    "logLevel": "INFO",
    "logRetentionDays": "14",
    # api
    "apiThrottleBurst": "200",
    "apiThrottleRate": "100",
    "authorizerCacheTtlSeconds": "300",
    "corsAllowOrigins": "[]",
    # processor event source mapping
    "processorBatchSize": "100",
    "processorBatchingWindowSeconds": "1",
    "processorParallelization": "1",
    "processorStartingPosition": "TRIM_HORIZON",
    "processorMaxRetries": "5",
    "processorMaxRecordAgeSeconds": "3600",
    # ingest limits (handed to the ingest function as environment variables)
    "maxReadingsPerRequest": "500",
    "maxBodyBytes": "262144",
    "maxReadingAgeSeconds": "604800",
    "maxFutureSkewSeconds": "300",
    "putBudgetSeconds": "5",
    # per-device daily reading quota (authorizer: DEVICE_DAILY_READING_QUOTA). 200,000: a device
    # reading once a second all day (86,400) can also send back one whole missed day (172,800 in
    # total) without an override, while a runaway or stolen device is stopped after about $0.17 of
    # readings a day (dev's $0.85 per million) instead of spending the stage's whole request budget.
    "deviceDailyReadingQuota": "200000",
    # alarms
    "alarmEmail": "",
    "alarmOverrides": "{}",
}
