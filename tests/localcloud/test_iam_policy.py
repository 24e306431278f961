"""IAM on the local cloud, piece by piece: wildcard matching, evaluation (explicit Deny,
default deny, conditions failing closed), the call -> action/resource mapping, and the
emulator's AccessDenied answers in each service protocol, as boto3 reads them."""
from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.iam_actions import ApiCall, Authorization, UnmappedCall, authorizations
from localcloud.iam_enforcer import clear_refusals, fetch_refusals
from localcloud.iam_identity import assume_role, role_client
from localcloud.iam_policy import (
    PolicyError,
    action_matches,
    evaluate,
    parse_policy,
    resource_matches,
)

TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/readings"


def policy(*statements: dict[str, Any]) -> list[tuple[str, Any]]:
    return [("p", parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)})))]


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


# ---- matching ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "action", "matches"), [
    ("dynamodb:BatchWriteItem", "dynamodb:BatchWriteItem", True),
    ("DynamoDB:batchwriteitem", "dynamodb:BatchWriteItem", True),  # actions ignore case
    ("dynamodb:*", "dynamodb:GetItem", True),
    ("dynamodb:Get*", "dynamodb:GetItem", True),
    ("dynamodb:Get*", "dynamodb:BatchGetItem", False),
    ("dynamodb:?etItem", "dynamodb:GetItem", True),
    ("dynamodb:?utItem", "dynamodb:PutItem", True),
    ("dynamodb:?etItem", "dynamodb:PutItem", False),
    ("dynamodb:?Item", "dynamodb:GetItem", False),  # ? is exactly one character
    ("*", "sqs:SendMessage", True),
    ("kinesis:PutRecord", "kinesis:PutRecords", False),  # no implicit prefix match
    ("kinesis:Put.ecords", "kinesis:PutRecords", False),  # regex characters are literal
])
def test_action_wildcards(pattern: str, action: str, matches: bool) -> None:
    assert action_matches(pattern, action) is matches


@pytest.mark.parametrize(("pattern", "resource", "matches"), [
    (TABLE_ARN, TABLE_ARN, True),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/Readings", TABLE_ARN, False),  # resources keep case
    ("arn:aws:dynamodb:*:123456789012:table/readings", TABLE_ARN, True),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/read?ngs", TABLE_ARN, True),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/readings", TABLE_ARN + "/index/byTs", False),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/readings/*", TABLE_ARN + "/index/byTs", True),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/readings/*", TABLE_ARN, False),
    # A log group's ":*" grants its streams: the wildcard spans ':'.
    ("arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f:*", "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f:log-stream:s", True),
    ("arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f:*", "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/fx:log-stream:s", False),
    ("*", "anything", True),
])
def test_resource_wildcards(pattern: str, resource: str, matches: bool) -> None:
    assert resource_matches(pattern, resource) is matches


# ---- evaluation ----------------------------------------------------------------------------------

def test_default_deny_and_allow() -> None:
    assert evaluate([], "dynamodb:GetItem", TABLE_ARN).denied
    docs = policy(allow("dynamodb:GetItem", TABLE_ARN))
    assert evaluate(docs, "dynamodb:GetItem", TABLE_ARN).allowed
    denied = evaluate(docs, "dynamodb:PutItem", TABLE_ARN)
    assert denied.denied and not denied.explicit_deny
    assert denied.reason == "because no identity-based policy allows the dynamodb:PutItem action"
    assert evaluate(docs, "dynamodb:GetItem", TABLE_ARN + "-other").denied


def test_explicit_deny_wins_over_any_allow() -> None:
    docs = policy(allow("dynamodb:*", "*"), {"Effect": "Deny", "Action": "dynamodb:Delete*", "Resource": TABLE_ARN})
    assert evaluate(docs, "dynamodb:PutItem", TABLE_ARN).allowed
    decision = evaluate(docs, "dynamodb:DeleteItem", TABLE_ARN)
    assert decision.denied and decision.explicit_deny
    assert "explicit deny" in decision.reason
    assert evaluate(docs, "dynamodb:DeleteItem", "arn:aws:dynamodb:us-east-1:123456789012:table/x").allowed


def test_deny_in_a_second_policy_wins() -> None:
    docs = policy(allow("*", "*")) + [("guard", parse_policy(json.dumps(
        {"Statement": {"Effect": "Deny", "Action": "sqs:*", "Resource": "*"}})))]
    assert evaluate(docs, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q").explicit_deny


def test_not_action_and_not_resource() -> None:
    docs = policy({"Effect": "Allow", "NotAction": "dynamodb:Delete*", "Resource": TABLE_ARN},
                  {"Effect": "Allow", "Action": "sqs:SendMessage", "NotResource": "arn:aws:sqs:*:*:secret"})
    assert evaluate(docs, "dynamodb:PutItem", TABLE_ARN).allowed
    assert evaluate(docs, "dynamodb:DeleteItem", TABLE_ARN).denied
    assert evaluate(docs, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:dlq").allowed
    assert evaluate(docs, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:secret").denied


def test_conditions_fail_closed() -> None:
    cond = {"Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    assert evaluate(policy(allow("dynamodb:GetItem", TABLE_ARN, **cond)), "dynamodb:GetItem", TABLE_ARN).denied
    guarded = policy(allow("dynamodb:GetItem", TABLE_ARN),
                     {"Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": "*", **cond})
    assert evaluate(guarded, "dynamodb:GetItem", TABLE_ARN).explicit_deny


@pytest.mark.parametrize("document", [
    "not json",
    json.dumps({"Version": "2012-10-17"}),
    json.dumps({"Statement": [{"Effect": "Permit", "Action": "a:b", "Resource": "*"}]}),
    json.dumps({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
    json.dumps({"Statement": [{"Effect": "Allow", "Action": "a:b", "NotAction": "a:c", "Resource": "*"}]}),
    json.dumps({"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}),
])
def test_unreadable_policies_are_refused_by_name(document: str) -> None:
    with pytest.raises(PolicyError, match="^doc"):
        parse_policy(document, "doc")


# ---- mapping -------------------------------------------------------------------------------------

def call(service: str, operation: str, **params: Any) -> ApiCall:
    return ApiCall(service, operation, params, "us-east-1", "123456789012")


def test_dynamodb_calls_map_to_table_arns() -> None:
    assert authorizations(call("dynamodb", "GetItem", TableName="devices")) == [
        Authorization("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/devices")]
    assert authorizations(call("dynamodb", "Query", TableName="readings", IndexName="byTs")) == [
        Authorization("dynamodb:Query", TABLE_ARN + "/index/byTs")]
    batch = authorizations(call("dynamodb", "BatchWriteItem", RequestItems={"readings": [], "devices": []}))
    assert batch == [Authorization("dynamodb:BatchWriteItem", TABLE_ARN),
                     Authorization("dynamodb:BatchWriteItem", "arn:aws:dynamodb:us-east-1:123456789012:table/devices")]
    assert authorizations(call("dynamodb", "UpdateItem", TableName=TABLE_ARN)) == [
        Authorization("dynamodb:UpdateItem", TABLE_ARN)]


def test_kinesis_calls_map_to_the_stream() -> None:
    stream = "arn:aws:kinesis:us-east-1:123456789012:stream/telemetry"
    assert authorizations(call("kinesis", "PutRecords", StreamName="telemetry", Records=[])) == [
        Authorization("kinesis:PutRecords", stream)]
    assert authorizations(call("kinesis", "ListShards", StreamARN=stream)) == [
        Authorization("kinesis:ListShards", stream)]
    iterator = base64.b64encode(b"telemetry:shardId-000000000000:42").decode()
    assert authorizations(call("kinesis", "GetRecords", ShardIterator=iterator)) == [
        Authorization("kinesis:GetRecords", stream)]


def test_queue_topic_and_log_calls() -> None:
    assert authorizations(call("sqs", "SendMessageBatch", QueueUrl="http://127.0.0.1:5000/123456789012/dlq")) == [
        Authorization("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:dlq")]
    topic = "arn:aws:sns:us-east-1:123456789012:alarms"
    assert authorizations(call("sns", "Publish", TopicArn=topic)) == [Authorization("sns:Publish", topic)]
    assert authorizations(call("logs", "PutLogEvents", logGroupName="/aws/lambda/f", logStreamName="s")) == [
        Authorization("logs:PutLogEvents", "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:log-stream:s")]


@pytest.mark.parametrize(("service", "operation", "params", "named"), [
    ("kinesis", "MergeShards", {"StreamName": "s"}, "kinesis MergeShards"),
    ("dynamodb", "TransactWriteItems", {"TransactItems": []}, "dynamodb TransactWriteItems"),
    ("monitoring", "PutMetricData", {}, "monitoring PutMetricData"),
    ("dynamodb", "GetItem", {}, "dynamodb GetItem (no TableName"),  # known call, resource unknowable
    ("kinesis", "GetRecords", {"ShardIterator": "%%%"}, "kinesis GetRecords"),
])
def test_an_unmapped_call_is_an_error_naming_it(service: str, operation: str, params: dict[str, Any],
                                                named: str) -> None:
    with pytest.raises(UnmappedCall) as caught:
        authorizations(call(service, operation, **params))
    assert named in str(caught.value)


# ---- the enforcing emulator, as boto3 sees it ----------------------------------------------------

@pytest.fixture(scope="module")
def sandbox(emulator: Any) -> dict[str, Any]:
    """A role allowed dynamodb:GetItem and sqs:ReceiveMessage on its own resources only, plus the resources."""
    name = f"iam-{uuid.uuid4().hex[:8]}"
    ddb, sqs, sns, kinesis, iam = (emulator.client(s) for s in ("dynamodb", "sqs", "sns", "kinesis", "iam"))
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    topic = sns.create_topic(Name=name)["TopicArn"]
    kinesis.create_stream(StreamName=name, ShardCount=1)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="own", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        allow("DynamoDB:Get*", f"arn:aws:dynamodb:us-east-1:123456789012:table/{name}"),
        allow("sqs:ReceiveMessage", f"arn:aws:sqs:us-east-1:123456789012:{name}"),
    ]}))
    creds = assume_role(emulator.endpoint_url, "us-east-1", role, "sandbox")
    return {"name": name, "queue": queue, "topic": topic, "creds": creds, "emulator": emulator, "role": role}


def as_role(sandbox: dict[str, Any], service: str) -> Any:
    return role_client(service, sandbox["emulator"].endpoint_url, "us-east-1", sandbox["creds"])


def error_of(fn: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        fn()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_allowed_calls_pass_and_admin_is_unchecked(sandbox: dict[str, Any]) -> None:
    name = sandbox["name"]
    assert "Item" not in as_role(sandbox, "dynamodb").get_item(TableName=name, Key={"id": {"S": "x"}})
    assert as_role(sandbox, "sqs").receive_message(QueueUrl=sandbox["queue"]).get("Messages", []) == []
    sandbox["emulator"].client("dynamodb").put_item(TableName=name, Item={"id": {"S": "x"}})  # admin key


def test_json_services_answer_access_denied_exception_400(sandbox: dict[str, Any]) -> None:
    clear_refusals(sandbox["emulator"].endpoint_url)
    name = sandbox["name"]
    status, code, message = error_of(lambda: as_role(sandbox, "dynamodb").put_item(
        TableName=name, Item={"id": {"S": "y"}}))
    assert (status, code) == (400, "AccessDeniedException")
    assert message == (f"User: arn:aws:sts::123456789012:assumed-role/{name}/sandbox is not authorized to perform: "
                       f"dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/{name} "
                       "because no identity-based policy allows the dynamodb:PutItem action")
    assert sandbox["emulator"].client("dynamodb").get_item(TableName=name, Key={"id": {"S": "y"}}).get("Item") is None
    status, code, _ = error_of(lambda: as_role(sandbox, "kinesis").put_records(
        StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}]))
    assert (status, code) == (400, "AccessDeniedException")
    refused = [(r["action"], r["resource"]) for r in fetch_refusals(sandbox["emulator"].endpoint_url)]
    assert refused == [("dynamodb:PutItem", f"arn:aws:dynamodb:us-east-1:123456789012:table/{name}"),
                       ("kinesis:PutRecords", f"arn:aws:kinesis:us-east-1:123456789012:stream/{name}")]


def test_sqs_and_sns_answer_in_their_own_formats(sandbox: dict[str, Any]) -> None:
    status, code, message = error_of(lambda: as_role(sandbox, "sqs").send_message(
        QueueUrl=sandbox["queue"], MessageBody="x"))
    assert (status, code) == (403, "AccessDenied") and "sqs:SendMessage" in message
    status, code, message = error_of(lambda: as_role(sandbox, "sns").publish(TopicArn=sandbox["topic"], Message="x"))
    assert (status, code) == (403, "AuthorizationError") and "sns:Publish" in message


def test_an_unmapped_call_of_a_role_is_refused_naming_it(sandbox: dict[str, Any]) -> None:
    status, code, message = error_of(lambda: as_role(sandbox, "kinesis").merge_shards(
        StreamName=sandbox["name"], ShardToMerge="shardId-000000000000", AdjacentShardToMerge="shardId-000000000001"))
    assert (status, code) == (400, "LocalCloudUnmappedIamCall")
    assert "kinesis MergeShards" in message
    status, code, message = error_of(lambda: as_role(sandbox, "cloudwatch").list_metrics())
    assert code == "LocalCloudUnmappedIamCall" and "monitoring ListMetrics" in message


def test_a_policy_change_applies_to_the_next_call(sandbox: dict[str, Any]) -> None:
    iam, name = sandbox["emulator"].client("iam"), sandbox["name"]
    iam.put_role_policy(RoleName=name, PolicyName="guard", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": "*"}]}))
    try:
        status, code, message = error_of(lambda: as_role(sandbox, "dynamodb").get_item(
            TableName=name, Key={"id": {"S": "x"}}))
        assert (status, code) == (400, "AccessDeniedException") and "explicit deny" in message
    finally:
        iam.delete_role_policy(RoleName=name, PolicyName="guard")
    assert as_role(sandbox, "dynamodb").get_item(TableName=name, Key={"id": {"S": "x"}})["Item"]


def test_log_delivery_follows_the_role(sandbox: dict[str, Any]) -> None:
    """The runner's log gate: refused lines are dropped; allowed ones reach the log group; an error
    that is not IAM's (a missing log group) keeps lines rather than losing them."""
    from localcloud.log_delivery import LogDelivery

    emulator, name = sandbox["emulator"], sandbox["name"]
    logs, iam = emulator.client("logs"), emulator.client("iam")
    logs.create_log_group(logGroupName=f"/aws/lambda/{name}")
    delivery = LogDelivery(emulator.endpoint_url, "us-east-1", sandbox["creds"], name, recheck_s=0)
    assert delivery.admit(b"first\n") is False and delivery.dropped == 1
    iam.put_role_policy(RoleName=name, PolicyName="logs", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/*")]}))
    try:
        assert delivery.admit(b"second\n") is True and delivery.delivered == 1
        events = logs.get_log_events(logGroupName=delivery.group, logStreamName=delivery.stream)["events"]
        assert [e["message"] for e in events] == ["second"]
        orphan = LogDelivery(emulator.endpoint_url, "us-east-1", sandbox["creds"], f"{name}-no-group", recheck_s=0)
        assert orphan.admit(b"kept\n") is True
    finally:
        iam.delete_role_policy(RoleName=name, PolicyName="logs")
    assert delivery.admit(b"third\n") is False
