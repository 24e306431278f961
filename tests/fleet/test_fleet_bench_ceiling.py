"""The benchmark's ceiling measurement writes what it claims, with the handlers' own packing, and cleans up."""
from __future__ import annotations

from typing import Any

import boto3

from benchmarks import ceiling


def test_ceiling_writes_every_reading_once_and_removes_its_resources(moto_endpoint: str, dynamodb: Any) -> None:
    kinesis = boto3.client("kinesis", endpoint_url=moto_endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    created: list[str] = []
    real_create = dynamodb.create_table

    def spy_create(**kw: Any) -> Any:  # remember the table name to count its items before deletion
        created.append(kw["TableName"])
        return real_create(**kw)

    real_delete = dynamodb.delete_table
    counted: list[int] = []

    def count_then_delete(**kw: Any) -> Any:
        counted.append(dynamodb.scan(TableName=kw["TableName"], Select="COUNT")["Count"])
        return real_delete(**kw)

    dynamodb.create_table, dynamodb.delete_table = spy_create, count_then_delete
    result = ceiling.measure(kinesis, dynamodb, readings=203, devices=7, per_request=5, metrics=4, shards=1)
    assert result.readings == 203
    assert result.records == result.items == 41  # ceil(203 / 5) requests, each packed into one record, one item
    assert counted == [41]
    assert result.readings_per_s > 0 and result.put_seconds > 0 and result.write_seconds > 0
    assert created[0] not in dynamodb.list_tables()["TableNames"]
    assert not [s for s in kinesis.list_streams()["StreamNames"] if s.startswith("bench-")
                and kinesis.describe_stream_summary(StreamName=s)["StreamDescriptionSummary"]["StreamStatus"] != "DELETING"]
