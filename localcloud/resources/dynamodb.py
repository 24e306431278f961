"""aws:dynamodb/table:Table -> a DynamoDB table: keys, GSIs, billing, TTL, PITR, SSE, tags."""
from __future__ import annotations

from typing import Any

from .base import Context, ProvisionError, Request, as_bool, as_int, drop_none, physical_name, tag_list


def _key_schema(hash_key: str | None, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}] if hash_key else []
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def _gsi(raw: dict[str, Any], on_demand: bool) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": raw.get("projectionType", "ALL")}
    if raw.get("nonKeyAttributes"):
        projection["NonKeyAttributes"] = list(raw["nonKeyAttributes"])
    schema = raw.get("keySchemas") or []
    keys = (
        [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in schema]
        if schema
        else _key_schema(raw.get("hashKey"), raw.get("rangeKey"))
    )
    out: dict[str, Any] = {"IndexName": raw["name"], "KeySchema": keys, "Projection": projection}
    if not on_demand:
        out["ProvisionedThroughput"] = {
            "ReadCapacityUnits": as_int(raw.get("readCapacity"), 1),
            "WriteCapacityUnits": as_int(raw.get("writeCapacity"), 1),
        }
    return out


def create_table(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    dynamodb = ctx.client("dynamodb")
    i = req.inputs
    name = physical_name(req)
    hash_key = i.get("hashKey")
    if not hash_key:
        raise ProvisionError(f"table {req.name!r}: hashKey is required")
    billing = i.get("billingMode") or "PROVISIONED"
    on_demand = billing == "PAY_PER_REQUEST"
    args: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in i.get("attributes") or []
        ],
        "KeySchema": _key_schema(hash_key, i.get("rangeKey")),
        "BillingMode": billing,
    }
    if not on_demand:
        args["ProvisionedThroughput"] = {
            "ReadCapacityUnits": as_int(i.get("readCapacity"), 1),
            "WriteCapacityUnits": as_int(i.get("writeCapacity"), 1),
        }
    gsis = [_gsi(g, on_demand) for g in i.get("globalSecondaryIndexes") or []]
    if gsis:
        args["GlobalSecondaryIndexes"] = gsis
    sse = i.get("serverSideEncryption") or {}
    if as_bool(sse.get("enabled")):
        args["SSESpecification"] = drop_none(
            {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": sse.get("kmsKeyArn") or None}
        )
    stream_enabled = as_bool(i.get("streamEnabled"))
    if stream_enabled:
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": i.get("streamViewType")}
    if i.get("deletionProtectionEnabled") is not None:
        args["DeletionProtectionEnabled"] = as_bool(i.get("deletionProtectionEnabled"))
    tags = ctx.tags(req)
    if tags:
        args["Tags"] = tag_list(tags)
    description = dynamodb.create_table(**args)["TableDescription"]
    ttl = i.get("ttl") or {}
    if as_bool(ttl.get("enabled")):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]}
        )
    pitr = i.get("pointInTimeRecovery") or {}
    if as_bool(pitr.get("enabled")):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    state = {
        **i,
        "name": name,
        "arn": description["TableArn"],
        "billingMode": billing,
        "streamArn": description.get("LatestStreamArn", ""),
        "tagsAll": tags,
    }
    return name, state


CREATORS = {"aws:dynamodb/table:Table": create_table}
