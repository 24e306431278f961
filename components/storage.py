"""DynamoDB tables: readings (time series, TTL) and devices (registry + latest reading)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from settings import StorageSettings

# Attribute names are part of the data contract (docs/architecture.md).
DEVICE_ID = "deviceId"
READING_KEY = "readingKey"
EXPIRES_AT = "expiresAt"


@dataclass(frozen=True)
class StorageArgs:
    settings: StorageSettings


class Storage(pulumi.ComponentResource):
    """Both tables on-demand and KMS-encrypted; PITR and deletion protection from settings."""

    readings_table_name: pulumi.Output[str]
    readings_table_arn: pulumi.Output[str]
    devices_table_name: pulumi.Output[str]
    devices_table_arn: pulumi.Output[str]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iot-ingest:storage:Storage", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self, protect=s.protect)
        common: dict[str, Any] = dict(
            billing_mode="PAY_PER_REQUEST",
            # enabled=True: the AWS managed key alias/aws/dynamodb instead of the AWS owned key.
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=s.point_in_time_recovery),
            deletion_protection_enabled=s.protect,
        )
        # pulumi-aws 7.51: top-level hash_key/range_key are current; only the GSI
        # hash_key/range_key are deprecated in favour of key_schema.
        self.readings = aws.dynamodb.Table(
            f"{name}-readings",
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=DEVICE_ID, type="S"),
                aws.dynamodb.TableAttributeArgs(name=READING_KEY, type="S"),
            ],
            hash_key=DEVICE_ID,
            range_key=READING_KEY,
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=EXPIRES_AT, enabled=True),
            opts=child,
            **common,
        )
        self.devices = aws.dynamodb.Table(
            f"{name}-devices",
            attributes=[aws.dynamodb.TableAttributeArgs(name=DEVICE_ID, type="S")],
            hash_key=DEVICE_ID,
            opts=child,
            **common,
        )
        self.readings_table_name = self.readings.name
        self.readings_table_arn = self.readings.arn
        self.devices_table_name = self.devices.name
        self.devices_table_arn = self.devices.arn
        self.register_outputs({
            "readingsTableName": self.readings_table_name,
            "devicesTableName": self.devices_table_name,
        })
